/**
 * What each webasm codegen extension (src/backend/wasm-codegen.ts) buys on the tiled matmul: the same
 * kernel source (tsnn's own 512x512x512 tiled4 matmul) compiled with the extensions switched on one by one,
 * timed in interleaved rounds in one process (one thread, no splitting), medians reported.
 *
 *   npm run build && node dist/bench/codegen-ablation.js [--rounds 15] [--size 512]
 */
import { Command } from 'commander';
import { wasmCodegen } from '../src/backend/wasm-codegen';
import { flatWasmOutput } from '../src/backend/kernel-output';
import { matmulKernel } from '../src/ops/matmul';
import { ref } from '../src/ops/kernel';
import { rand, manualSeed } from '../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gpujs = require('gpu.js');

const opts = new Command()
  .option('--rounds <n>', 'timed rounds per variant', (v) => parseInt(v, 10), 15)
  .option('--size <n>', 'M = K = N', (v) => parseInt(v, 10), 512)
  .parse()
  .opts<{ rounds: number; size: number }>();

const n = opts.size;
manualSeed(0);
const a = rand([n, n], { device: 'webasm' });
const b = rand([n, n], { device: 'webasm' });
const kb = matmulKernel(ref(a), ref(b), { batch: [], M: n, K: n, N: n, device: 'webasm' });
const spec = kb.build(kb.result);
const args = spec.inputs.map((buf) => buf.handle as Float32Array);

const steps: [string, Partial<typeof wasmCodegen>][] = [
  ['gpu.js alone', { vectorLoads: false, integerCounters: false, threadLocals: false, provenBounds: false }],
  ['+ vector loads of B', { vectorLoads: true }],
  ['+ integer loop counters', { integerCounters: true }],
  ['+ thread ids in locals', { threadLocals: true }],
  ['+ proven bounds (no check)', { provenBounds: true }],
];
const saved = { ...wasmCodegen };
const kernels: { name: string; run: () => Float32Array; ms: number[] }[] = [];
for (const [name, flags] of steps) {
  Object.assign(wasmCodegen, flags);
  const gpu = new gpujs.GPU({ mode: 'webasm' });
  const k = gpu.createKernel(spec.source, { output: spec.grid, returnType: 'Array(4)', loopMaxIterations: 100000 });
  flatWasmOutput(k);
  for (let i = 0; i < 25; i++) k(...args); // compile, then let V8 tier the wasm up
  kernels.push({ name, run: () => k(...args), ms: [] });
}
Object.assign(wasmCodegen, saved);

const reference = kernels[0].run().slice();
for (const k of kernels.slice(1)) {
  const out = k.run();
  if (!out.every((v, i) => Object.is(v, reference[i]))) throw new Error(`${k.name}: result differs from gpu.js alone`);
}
for (let r = 0; r < opts.rounds; r++) {
  for (const k of kernels) {
    const t0 = performance.now();
    k.run();
    k.ms.push(performance.now() - t0);
  }
}
const gmacs = (ms: number) => (n * n * n) / (ms * 1e6);
console.log(`tiled matmul ${n}x${n}x${n} on webasm, 1 thread, median of ${opts.rounds} interleaved rounds (results bit-identical across variants)`);
for (const k of kernels) {
  const med = k.ms.sort((x, y) => x - y)[k.ms.length >> 1];
  console.log(`  ${k.name.padEnd(26)} ${med.toFixed(2).padStart(7)} ms  ${gmacs(med).toFixed(2)} GMAC/s`);
}
