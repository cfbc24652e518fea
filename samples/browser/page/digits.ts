/** Fetches the demo's digits file (written by samples/browser/site.ts) and unpacks it. */
import { decodeDigits } from '../digits-format';
import type { Split } from '../../mnist/batches';

export async function fetchDigits(url: string): Promise<{ train: Split; test: Split }> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`fetching ${url}: HTTP ${res.status}`);
  const bytes = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
  return decodeDigits(new Uint8Array(bytes));
}
