/**
 * The WebAssembly SIMD peak of this machine and runtime, one thread: GFLOP/s of a pure-register loop of
 * f32x4 multiply-adds on 12 independent accumulators (src/backend/wasm/gemm-kernel.ts, `peak`), the
 * ceiling a matmul micro-kernel is measured against. Uses `f32x4.relaxed_madd` where the runtime has it
 * (as the matmul does), else mul + add. Timed in CPU time of short calls after a tier-up warm-up (V8 runs a
 * wasm function in its baseline compiler until it is hot), best of several rounds.
 */
import { gemmEngine } from '../src/backend/wasm/gemm';
import { PEAK_ACCUMULATORS } from '../src/backend/wasm/gemm-kernel';

export interface WasmPeak {
  gflops: number;
  fma: boolean;
  accumulators: number;
}

export function wasmPeak(rounds = 7): WasmPeak {
  const e = gemmEngine();
  const iters = 200_000;
  for (let i = 0; i < 40; i++) e.peak(iters);
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t = process.cpuUsage();
    for (let i = 0; i < 10; i++) e.peak(iters);
    const d = process.cpuUsage(t);
    best = Math.min(best, (d.user + d.system) / 1e6 / 10);
  }
  return { gflops: (8 * PEAK_ACCUMULATORS * iters) / best / 1e9, fma: e.shape.fma, accumulators: PEAK_ACCUMULATORS };
}

if (require.main === module) {
  const p = wasmPeak();
  console.log(
    `wasm SIMD peak, 1 thread: ${p.gflops.toFixed(1)} GFLOP/s (${p.fma ? 'relaxed_madd' : 'f32x4.mul + f32x4.add'}, ${p.accumulators} accumulators)`,
  );
}
