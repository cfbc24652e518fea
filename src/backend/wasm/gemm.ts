/**
 * Runs C = A B on the direct WebAssembly micro-kernel (gemm-kernel.ts): packs A and B into panels in
 * the arena (arena.ts), runs the kernel over cache-sized blocks of K, and copies C out into a fresh host
 * array (device buffers on webasm are host Float32Arrays; the arena is scratch only).
 *
 * Tile: 4x8 (8 v128 accumulators), k loop not unrolled. Measured on this machine (AMD EPYC, V8 11.3,
 * 512^3, CPU time): 4x8 43-52 GFLOP/s against a 52-55 GFLOP/s register peak; 6x8, 5x8, 4x12, 4x16 and
 * explicit unrolling are 20-33 GFLOP/s, because TurboFan hoists every broadcast load of an unrolled body
 * ahead of the multiplies and spills accumulators (x64 V8 allocates 15 xmm registers); it unrolls the
 * plain 4x8 loop by 2 itself with no spill (bench/README.md has the table).
 */
import { WasmArena } from './arena';
import { gemmModuleBytes, GemmShape } from './gemm-kernel';
import { wasmFeatures } from './features';
import { wasmApi } from './runtime';
import { option } from '../../platform/options';
import { packA, packB, MatrixView } from './pack';
import { PanelCache } from './panel-cache';
import { onRecycle } from './out-pool';
import { epilogueModuleBytes } from './epilogue-kernel';
import { packModuleBytes } from './pack-kernel';

export const MR = 4;
export const NR = 8;
/** K block: an A panel (MR x KC floats, 8 KiB) stays in L1 while the kernel walks the B panels */
const KC = 512;

type GemmFn = (ap: number, bp: number, cp: number, nTiles: number, kc: number, ldc: number, bStride: number, accumulate: number, ldb: number) => void;

export interface GemmEngine {
  arena: WasmArena;
  shape: GemmShape;
  /** gemm[r] computes r rows (1..MR) */
  gemm: GemmFn[];
  peak: (iters: number) => void;
  panels: PanelCache;
  /** bias (+ relu) in place over C in the arena (epilogue-kernel.ts): (cp, rows, vecs, ldc bytes, bias address) */
  epilogue: Record<'bias' | 'biasRelu', (cp: number, rows: number, vecs: number, ldc: number, bp: number) => void>;
  /** 2-D strided copy of words inside the memory (pack-kernel.ts) */
  gather: (src: number, dst: number, outer: number, inner: number, so: number, si: number, dO: number, dI: number) => void;
}

let engine: GemmEngine | null = null;

/** Relaxed-SIMD FMA: on where the runtime validates it, unless TSNN_WASM_FMA=off. */
export function useFma(): boolean {
  return wasmFeatures().relaxedSimd && option('wasmFma') !== false;
}

/** The one engine of this thread (module compiled and instantiated on first use). */
export function gemmEngine(): GemmEngine {
  if (engine) return engine;
  if (!wasmApi || !wasmFeatures().simd) throw new Error('internal: the direct webasm matmul needs WebAssembly SIMD');
  const arena = new WasmArena();
  const shape: GemmShape = { MR, NR, UNROLL: 1, fma: useFma() };
  const module = new wasmApi.Module(gemmModuleBytes(shape, { pages: 1 }));
  const ex = new wasmApi.Instance(module, { env: { memory: arena.memory } }).exports;
  const gemm: GemmFn[] = [];
  for (let r = 1; r <= MR; r++) gemm[r] = ex[`gemm${r}`] as GemmFn;
  const panels = new PanelCache(arena);
  const epi = new wasmApi.Instance(new wasmApi.Module(epilogueModuleBytes()), { env: { memory: arena.memory } }).exports;
  const pk = new wasmApi.Instance(new wasmApi.Module(packModuleBytes()), { env: { memory: arena.memory } }).exports;
  engine = {
    arena,
    shape,
    gemm,
    peak: ex.peak as (iters: number) => void,
    panels,
    epilogue: epi as GemmEngine['epilogue'],
    gather: pk.gather as GemmEngine['gather'],
  };
  onRecycle((a) => panels.forget(a));
  return engine;
}

/** One product of a batch: its A and B, and where its M x N result goes in `out`. */
export interface GemmJob {
  outAt: number;
  A: MatrixView;
  B: MatrixView;
}

const sameView = (x: MatrixView, y: MatrixView | null) => y !== null && x.data === y.data && x.offset === y.offset && x.rs === y.rs && x.cs === y.cs;

/**
 * out[job.outAt + m*N + n] = sum_k A[m, k] B[k, n] for each job (all M x K by K x N). Scratch is
 * allocated once per call; an A or B equal to the previous job's (a broadcast operand: a convolution's
 * weight against every image) is packed once. `bKey`: the host array every job's B lives in when B may
 * be kept packed across calls (PanelCache), else null. `epi`: a column bias (and relu) applied as C is
 * copied out, in the same pass.
 */
export function gemmBatch(out: Float32Array, jobs: GemmJob[], M: number, K: number, N: number, bKey: Float32Array | null, epi?: Epilogue): void {
  if (M === 0 || N === 0 || jobs.length === 0) return;
  if (K === 0) {
    for (const j of jobs) {
      out.fill(0, j.outAt, j.outAt + M * N);
      if (epi) copyOut(out, j.outAt, out, j.outAt, M, N, N, epi);
    }
    return;
  }
  const e = gemmEngine();
  const { arena } = e;
  const mT = Math.ceil(M / MR);
  const nT = Math.ceil(N / NR);
  const ldc = nT * NR;
  const bBytes = nT * NR * K * 4;
  const aBlock = arena.alloc(mT * MR * K * 4);
  // (with an epilogue, the bias after C, zero-padded to ldc)
  const cBlock = arena.alloc(M * ldc * 4 + 64 + (epi ? ldc * 4 : 0));
  const biasAt = cBlock + M * ldc * 4 + 64;
  if (epi) {
    const f32 = arena.f32;
    f32.set(epi.bias.subarray(0, N), biasAt >> 2);
    f32.fill(0, (biasAt >> 2) + N, (biasAt >> 2) + ldc);
  }
  let bBlock = -1;
  let lastA: MatrixView | null = null;
  let lastB: MatrixView | null = null;
  const b = { at: -1, ldb: NR * 4, stride: K * NR * 4 };
  try {
    for (const { outAt, A, B } of jobs) {
      if (!sameView(B, lastB)) {
        const cached = e.panels.get(bKey, B, K, N);
        if (cached >= 0) Object.assign(b, { at: cached, ldb: NR * 4, stride: K * NR * 4 });
        else if (B.cs === 1 && !(bKey && e.panels.wants(bKey, B, K, N))) {
          // (a first use: `wants` noted it, so a second use packs and keeps it)
          // row-major rows read once: copied in as they are (a memcpy per row) and read in place
          if (bBlock < 0) bBlock = arena.alloc(Math.max(bBytes, (K * N + NR) * 4));
          const f32 = arena.f32;
          const at = bBlock >> 2;
          if (B.rs === N) f32.set(B.data.subarray(B.offset, B.offset + K * N), at);
          else for (let k = 0; k < K; k++) f32.set(B.data.subarray(B.offset + k * B.rs, B.offset + k * B.rs + N), at + k * N);
          f32.fill(0, at + K * N, at + K * N + NR);
          Object.assign(b, { at: bBlock, ldb: N * 4, stride: NR * 4 });
        } else {
          if (bBlock < 0) bBlock = arena.alloc(Math.max(bBytes, (K * N + NR) * 4));
          packBFast(e, bBlock, B, K, N);
          Object.assign(b, { at: bBlock, ldb: NR * 4, stride: K * NR * 4 });
          if (bKey && e.panels.put(bKey, B, K, N, bBlock, bBytes)) bBlock = -1; // owned by the cache now
        }
        lastB = B;
      }
      if (!sameView(A, lastA)) {
        packAFast(e, aBlock, A, M, K);
        lastA = A;
      }
      runPanels(e, aBlock, b, cBlock, M, K, nT, ldc);
      if (epi) e.epilogue[epi.relu ? 'biasRelu' : 'bias'](cBlock, M, Math.ceil(N / 4), ldc * 4, biasAt);
      const f32 = arena.f32;
      const c0 = cBlock >> 2;
      if (ldc === N) out.set(f32.subarray(c0, c0 + M * N), outAt);
      else if (N < 32) for (let m = 0; m < M; m++) for (let n = 0, s = c0 + m * ldc, d = outAt + m * N; n < N; n++) out[d + n] = f32[s + n];
      else for (let m = 0; m < M; m++) out.set(f32.subarray(c0 + m * ldc, c0 + m * ldc + N), outAt + m * N);
    }
  } finally {
    arena.free(aBlock);
    arena.free(cBlock);
    if (bBlock >= 0) arena.free(bBlock);
  }
}

/**
 * Copies the span of X's elements into arena scratch with a memcpy and runs `f` on its byte address;
 * false (nothing done) where the span is over twice the elements (a sparse view: pack it in JavaScript).
 */
function staged(e: GemmEngine, X: MatrixView, rows: number, cols: number, f: (at: number) => void): boolean {
  if (X.rs < 0 || X.cs < 0) return false;
  const span = (rows - 1) * X.rs + (cols - 1) * X.cs + 1;
  if (span > 2 * rows * cols) return false;
  const blk = e.arena.alloc(span * 4);
  try {
    e.arena.f32.set(X.data.subarray(X.offset, X.offset + span), blk >> 2);
    f(blk);
  } finally {
    e.arena.free(blk);
  }
  return true;
}

/**
 * packA into the arena at byte `at`. Row-major A: memcpy then the wasm gather, per row of a panel (0.6x
 * the JavaScript loop's time, measured; a transposed A stays in JavaScript, where the gather is slower).
 */
function packAFast(e: GemmEngine, at: number, A: MatrixView, M: number, K: number): void {
  const full = Math.floor(M / MR);
  const inWasm =
    A.cs === 1 &&
    full > 0 &&
    staged(e, A, full * MR, K, (src) => {
      for (let r = 0; r < MR; r++) e.gather(src + r * A.rs * 4, at + r * 4, full, K, MR * A.rs * 4, 4, K * MR * 4, MR * 4);
    });
  if (!inWasm) return packA(e.arena.f32, at >> 2, A, M, K, MR);
  if (full * MR < M) packA(e.arena.f32, (at >> 2) + full * K * MR, { ...A, offset: A.offset + full * MR * A.rs }, M - full * MR, K, MR);
}

/** packB into the arena at byte `at`; a transposed B (nn.Linear's W^T: k contiguous) through the wasm gather, per column of a panel. */
function packBFast(e: GemmEngine, at: number, B: MatrixView, K: number, N: number): void {
  const full = Math.floor(N / NR);
  const inWasm =
    B.rs === 1 &&
    full > 0 &&
    staged(e, B, K, full * NR, (src) => {
      for (let c = 0; c < NR; c++) e.gather(src + c * B.cs * 4, at + c * 4, full, K, NR * B.cs * 4, 4, K * NR * 4, NR * 4);
    });
  if (!inWasm) return packB(e.arena.f32, at >> 2, B, K, N, NR);
  if (full * NR < N) packB(e.arena.f32, (at >> 2) + full * K * NR, { ...B, offset: B.offset + full * NR * B.cs }, K, N - full * NR, NR);
}

/** out[..., m, n] = act(C[m, n] + bias[n]) after the product, each step rounded to f32 as separate ops would. */
export interface Epilogue {
  /** N values */
  bias: Float32Array;
  relu: boolean;
}

/** out[at + m*N + n] = epi(c[c0 + m*ldc + n]) in JavaScript (K = 0 only; else epilogue-kernel.ts in the arena). */
function copyOut(out: Float32Array, at: number, c: Float32Array, c0: number, M: number, N: number, ldc: number, epi: Epilogue): void {
  const { bias, relu } = epi;
  for (let m = 0; m < M; m++) {
    const s = c0 + m * ldc;
    const d = at + m * N;
    // the f64 sum of two f32s rounds to their f32 sum when stored; relu after rounding equals relu before
    if (relu) for (let n = 0; n < N; n++) out[d + n] = Math.max(c[s + n] + bias[n], 0);
    else for (let n = 0; n < N; n++) out[d + n] = c[s + n] + bias[n];
  }
}

/** C (M rows, `ldc` floats apart) = packed A x B (packed panels or row-major rows, see `b`), over K blocks of KC. */
function runPanels(
  e: GemmEngine,
  aBlock: number,
  b: { at: number; ldb: number; stride: number },
  cBlock: number,
  M: number,
  K: number,
  nT: number,
  ldc: number,
): void {
  const full = Math.floor(M / MR);
  const rest = M - full * MR;
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0);
    const acc = k0 > 0 ? 1 : 0;
    const bp = b.at + k0 * b.ldb;
    for (let i = 0; i < full; i++)
      e.gemm[MR](aBlock + (i * K * MR + k0 * MR) * 4, bp, cBlock + i * MR * ldc * 4, nT, kc, ldc * 4, b.stride, acc, b.ldb);
    if (rest > 0) e.gemm[rest](aBlock + (full * K * MR + k0 * MR) * 4, bp, cBlock + full * MR * ldc * 4, nT, kc, ldc * 4, b.stride, acc, b.ldb);
  }
}
