/**
 * The demo's compact MNIST file: the `mnist` package's 10,000 digits (41 MB of JSON) as one gzipped binary of
 * ~1.6 MB that the page fetches. Lossless: the package's pixel values are 256 distinct numbers (k/255 rounded to
 * 3 decimals), stored once in the header, and each pixel is a byte indexing them.
 *
 * Layout (before gzip): u32 LE header length, UTF-8 JSON header { format, nTrain, nTest, values },
 * then nTrain + nTest label bytes, then (nTrain + nTest) × 784 pixel bytes; train digits first.
 * No DOM and no Node built-ins here: samples/browser/site.ts writes it, the page reads it.
 */
import type { Split } from '../mnist/batches';

export const DIGITS_FORMAT = 'tsnn-mnist-u8-v1';
const PIXELS = 784;

interface Header {
  format: string;
  nTrain: number;
  nTest: number;
  values: number[];
}

export function encodeDigits(train: Split, test: Split): Uint8Array {
  const distinct = new Set<number>();
  for (const s of [train, test]) for (const v of s.images) distinct.add(v);
  const values = [...distinct].sort((a, b) => a - b);
  if (values.length > 256) throw new Error(`encodeDigits: ${values.length} distinct pixel values, a byte indexes at most 256`);
  const index = new Map(values.map((v, i) => [v, i]));
  const header = new TextEncoder().encode(JSON.stringify({ format: DIGITS_FORMAT, nTrain: train.n, nTest: test.n, values } satisfies Header));
  const n = train.n + test.n;
  const out = new Uint8Array(4 + header.length + n + n * PIXELS);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  let at = 4 + header.length;
  for (const s of [train, test]) for (let i = 0; i < s.n; i++) out[at++] = s.labels[i];
  for (const s of [train, test]) for (const v of s.images) out[at++] = index.get(v)!;
  return out;
}

export function decodeDigits(bytes: Uint8Array): { train: Split; test: Split } {
  const fail = (why: string) => new Error(`decodeDigits: not a ${DIGITS_FORMAT} file (${why})`);
  if (bytes.length < 4) throw fail(`${bytes.length} bytes`);
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + len > bytes.length) throw fail(`header of ${len} bytes in a file of ${bytes.length}`);
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len))) as Header;
  if (h.format !== DIGITS_FORMAT) throw fail(`format '${h.format}'`);
  const n = h.nTrain + h.nTest;
  const want = 4 + len + n + n * PIXELS;
  if (bytes.length !== want) throw fail(`${bytes.length} bytes, the header implies ${want}`);
  const values = Float32Array.from(h.values);
  const labels = bytes.subarray(4 + len, 4 + len + n);
  const pixels = bytes.subarray(4 + len + n);
  const split = (from: number, count: number): Split => {
    const images = new Float32Array(count * PIXELS);
    for (let i = 0; i < images.length; i++) images[i] = values[pixels[from * PIXELS + i]];
    return { images, labels: Float32Array.from(labels.subarray(from, from + count)), n: count };
  };
  return { train: split(0, h.nTrain), test: split(h.nTrain, h.nTest) };
}
