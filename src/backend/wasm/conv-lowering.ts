/**
 * The direct WebAssembly lowering of conv2d on `webasm`: implicit GEMM. No column matrix is built: each
 * image is copied once into the arena as zero-padded phase planes (pack-image.ts), where every patch row
 * is a contiguous run at a per-tap offset, and the 4x8 SIMD tile kernels (conv-kernel.ts) read it there.
 *  - forward:     y[n]  = W_g [Og, Kg] x patches   (fwd kernel; the bias added as the tile rows are copied out in NCHW)
 *  - grad input:  gx[n] = col2im(W_g^T x gy[n])    (gx kernel: the product scattered into padded planes, then unpadded)
 *  - grad weight: gW    = sum_n gy[n] x patches^T  (gw kernel: dot products along the output positions)
 * Each is a KernelSpec with a `native` runner (like matmul-lowering.ts), so stats, the profiler and graph
 * capture/replay treat it as one kernel. Single-threaded.
 *
 * Switch: `setBackendOptions({ wasmConv: false })` (TSNN_WASM_CONV=off), or the matmul's switch
 * (`wasmMatmul: false`), keeps conv2d on its gpu.js kernels, the reference the tests compare with.
 */
import type { KernelSpec } from '../gpujs-backend';
import type { StridedRef } from '../kernel-builder';
import { option } from '../../platform/options';
import { wasmApi } from './runtime';
import { gemmEngine, useFma } from './gemm';
import { wasmMatmulAvailable } from './matmul-lowering';
import { convModuleBytes, MR, NR } from './conv-kernel';
import { packA } from './pack';
import { PanelCache } from './panel-cache';
import { ConvShape, ImageGrid, imageGrid, imageRuns, gradRuns, gather, scatter, Runs } from './pack-image';
import type { WasmArena } from './arena';
import { takeOutput } from './out-pool';

export type { ConvShape } from './pack-image';

/** K block of the forward (as gemm.ts's KC): an A panel of MR x KC floats stays in L1. */
const KC = 512;
/** floats of images plus their outputs the forward keeps at once (about an L2 cache) */
const CHUNK_FLOATS = 65536;

type TileFn = (...args: number[]) => void;

interface ConvEngine {
  arena: WasmArena;
  /** packed weight panels kept per weight array (inference packs each layer's weight once) */
  weights: PanelCache;
  fwd: TileFn[];
  gx: TileFn[];
  gw: TileFn[];
  copy: TileFn;
}

let engine: ConvEngine | null = null;

/** The kernels, instantiated over the matmul engine's arena (one memory for all direct kernels). */
function convEngine(): ConvEngine {
  if (engine) return engine;
  const { arena } = gemmEngine();
  const module = new wasmApi!.Module(convModuleBytes(useFma()));
  const ex = new wasmApi!.Instance(module, { env: { memory: arena.memory } }).exports;
  const pick = (p: string) => [0, 1, 2, 3, 4].map((r) => ex[`${p}${r}`] as TileFn);
  engine = { arena, weights: new PanelCache(arena), fwd: pick('fwd'), gx: pick('gx'), gw: pick('gw'), copy: ex.copy as TileFn };
  return engine;
}

/** Drops the packed conv weights kept in the arena (tests that count the arena's blocks in use). */
export function clearConvWeights(): void {
  engine?.weights.clear();
}

/** Whether conv2d on webasm takes this path now. */
export function wasmConvAvailable(): boolean {
  return option('wasmConv') !== false && wasmMatmulAvailable();
}

/** Image runs of a [N, C, H, W] view (element strides). */
const runsOf = (s: ConvShape, g: ImageGrid, r: StridedRef) => imageRuns(s, g, r.strides[1], r.strides[2], r.strides[3]);
const gradRunsOf = (s: ConvShape, g: ImageGrid, r: StridedRef) => gradRuns(s, g, r.strides[1], r.strides[2], r.strides[3]);

/** The weight [O, Cg, kH, kW] as rows [O, Kg]: itself where contiguous, else a gathered copy. */
function weightRows(data: Float32Array, w: StridedRef, s: ConvShape): { data: Float32Array; offset: number } {
  const [sO, sC, sH, sW] = w.strides;
  const Kg = s.Cg * s.kH * s.kW;
  if (sW === 1 && sH === s.kW && sC === s.kH * s.kW && sO === Kg) return { data, offset: w.offset };
  const out = new Float32Array(s.O * Kg);
  let i = 0;
  for (let o = 0; o < s.O; o++)
    for (let c = 0; c < s.Cg; c++)
      for (let kh = 0; kh < s.kH; kh++) for (let kw = 0; kw < s.kW; kw++) out[i++] = data[w.offset + o * sO + c * sC + kh * sH + kw * sW];
  return { data: out, offset: 0 };
}

/**
 * The weight packed as A panels, per group: `fwd` W_g [Og, Kg], `gx` W_g^T [Kg, Og]. Kept in the engine's
 * panel cache from a weight array's second use (a weight read by every inference step is packed once);
 * otherwise a scratch block of this call.
 */
function packedWeights(e: ConvEngine, sc: Scratch, Wt: Float32Array, w: StridedRef, s: ConvShape, pass: 'fwd' | 'gx'): number {
  const G = s.O / s.Og;
  const Kg = s.Cg * s.kH * s.kW;
  const [rows, depth] = pass === 'fwd' ? [s.Og, Kg] : [Kg, s.Og];
  const panel = Math.ceil(rows / MR) * MR * depth;
  const bytes = G * panel * 4;
  const wr = weightRows(Wt, w, s);
  const key = wr.data === Wt ? Wt : null;
  // the cache's view key: this pass's orientation, the weight's place, and (K, N) = (Kg, O*Og), which fix the groups
  const view = { data: Wt, offset: w.offset, rs: pass === 'fwd' ? Kg : 1, cs: pass === 'fwd' ? 1 : Kg };
  const cached = e.weights.get(key, view, Kg, s.O * 65536 + s.Og);
  if (cached >= 0) return cached;
  const at = e.arena.alloc(bytes, 'conv2d');
  const f32 = e.arena.f32;
  for (let gi = 0; gi < G; gi++)
    packA(f32, (at >> 2) + gi * panel, { data: wr.data, offset: wr.offset + gi * s.Og * Kg, rs: view.rs, cs: view.cs }, rows, depth, MR);
  if (!(key && e.weights.put(key, view, Kg, s.O * 65536 + s.Og, at, bytes))) sc.adopt(at);
  return at;
}

/** Arena blocks for one call, freed together. */
class Scratch {
  private readonly blocks: number[] = [];
  constructor(readonly arena: WasmArena) {}
  alloc(floats: number): number {
    const at = this.arena.alloc(floats * 4 + 64, 'conv2d');
    this.blocks.push(at);
    return at;
  }
  /** a block allocated elsewhere, freed with these */
  adopt(at: number): void {
    this.blocks.push(at);
  }
  free(): void {
    for (const b of this.blocks) this.arena.free(b);
  }
}

/** Row runs (element offsets, contiguous rows) as the copy kernel's (src bytes, dst bytes, count) triples. */
function byteRuns(src: Int32Array, dst: Int32Array, count: Int32Array): Int32Array {
  const t = new Int32Array(src.length * 3);
  for (let i = 0; i < src.length; i++) {
    t[3 * i] = src[i] * 4;
    t[3 * i + 1] = dst[i] * 4;
    t[3 * i + 2] = count[i];
  }
  return t;
}

/**
 * Copies image n of a host array into an arena block along `runs`: through the wasm copy kernel where the
 * runs are contiguous on both sides and the image is one dense range (staged with one `set`), else by JS.
 */
class Spreader {
  private readonly table: Int32Array | null;
  private tableAt = -1;
  constructor(
    private readonly runs: Runs,
    /** element stride between images, and the image's dense extent (0: not dense) */
    private readonly imageStride: number,
    private readonly dense: number,
  ) {
    this.table = dense > 0 && runs.step === 1 ? byteRuns(runs.src, runs.dst, runs.count) : null;
  }
  /** scratch this call needs: the table and a staging block */
  prepare(e: ConvEngine, sc: Scratch): { stage: number; zero: number } {
    if (!this.table) return { stage: -1, zero: -1 };
    this.tableAt = sc.alloc(this.table.length);
    writeTable(e.arena, this.tableAt, this.table);
    const zero = sc.alloc(1);
    e.arena.f32[zero >> 2] = 0;
    return { stage: sc.alloc(this.dense), zero };
  }
  run(e: ConvEngine, f32: Float32Array, dstFloat: number, src: Float32Array, offset: number, n: number, p: { stage: number; zero: number }): void {
    const at = offset + n * this.imageStride;
    if (!this.table) return gather(f32, dstFloat, src, at, this.runs);
    f32.set(src.subarray(at, at + this.dense), p.stage >> 2);
    e.copy(dstFloat * 4, p.stage, this.tableAt, this.runs.src.length, p.zero, 1 << 30);
  }
}

/** The dense extent of image-major 4-D strides (contiguous within an image), else 0. */
function denseExtent(r: StridedRef): number {
  const [, d1, d2, d3] = r.shape;
  const [, s1, s2, s3] = r.strides;
  return s3 === 1 && (d2 === 1 || s2 === d3) && (d1 === 1 || s1 === d2 * d3) ? d1 * d2 * d3 : 0;
}

function writeTable(arena: WasmArena, at: number, koff: Int32Array): void {
  new Int32Array(arena.memory.buffer, at, koff.length).set(koff);
}

const label = (s: ConvShape, what: string) =>
  `/* direct wasm conv ${what} */ x[${s.N},${s.C},${s.H},${s.W}] w[${s.O},${s.Cg},${s.kH},${s.kW}] s${s.sh},${s.sw} p${s.ph},${s.pw} d${s.dh},${s.dw} -> [${s.OH},${s.OW}]`;

/** y [N, O, OH, OW] = conv2d(x, w) + bias. */
export function wasmConvForwardSpec(s: ConvShape, x: StridedRef, w: StridedRef, bias: StridedRef | null): KernelSpec {
  const g = imageGrid(s);
  const G = s.O / s.Og;
  const { Kg, Pt } = g;
  const nT = Pt / NR;
  const mT = Math.ceil(s.Og / MR);
  const aFloats = mT * MR * Kg;
  const outSize = s.N * s.O * s.OH * s.OW;
  const xRuns = runsOf(s, g, x);
  const CHW = s.C * s.H * s.W;
  const plane = s.OH * s.OW;
  const nb = Math.max(1, Math.min(s.N, Math.floor(CHUNK_FLOATS / (g.image + g.slack + s.O * Pt + CHW + s.O * plane))));
  // a contiguous x is copied into the arena a chunk at a time and spread into the planes by the copy kernel
  const [sN, sC, sH] = x.strides;
  const xDense = xRuns.step === 1 && sH === s.W && sC === s.H * s.W && (sN === CHW || s.N === 1);
  const xTable = byteRuns(xRuns.src, xRuns.dst, xRuns.count);
  // the grid rows [O, Pt] to NCHW rows, a bias value every OH rows
  const outRuns = Int32Array.from({ length: s.O * s.OH * 3 }, (_, i) => {
    const r = Math.floor(i / 3);
    const [o, oh] = [Math.floor(r / s.OH), r % s.OH];
    return [(o * Pt + oh * g.Wq) * 4, r * s.OW * 4, s.OW][i % 3];
  });
  const native = (args: Float32Array[]): Float32Array => {
    const [X, Wt, B] = args;
    const e = convEngine();
    const sc = new Scratch(e.arena);
    const out = takeOutput(outSize);
    try {
      const aBlock = packedWeights(e, sc, Wt, w, s, 'fwd');
      // images in chunks of `nb`: each A panel (MR x KC floats) is read once per chunk, not once per image
      const xStride = g.image + g.slack;
      const xBlock = sc.alloc(nb * xStride);
      const cBlock = sc.alloc(nb * s.O * Pt);
      const tBlock = sc.alloc(Kg);
      const stage = sc.alloc(nb * Math.max(CHW, s.O * plane));
      const xt = sc.alloc(xTable.length);
      const ot = sc.alloc(outRuns.length);
      const bBlock = sc.alloc(s.O + 1);
      const f32 = e.arena.f32;
      f32.fill(0, xBlock >> 2, (xBlock >> 2) + nb * xStride);
      writeTable(e.arena, tBlock, g.koff);
      writeTable(e.arena, xt, xTable);
      writeTable(e.arena, ot, outRuns);
      // the bias (or zeros) at bBlock; bBlock + 4*O is a zero for plain copies
      for (let o = 0; o <= s.O; o++) f32[(bBlock >> 2) + o] = bias && o < s.O ? B[bias.offset + o * (bias.strides[0] ?? 1)] : 0;
      const zero = bBlock + s.O * 4;
      for (let n0 = 0; n0 < s.N; n0 += nb) {
        const nc = Math.min(nb, s.N - n0);
        if (xDense) {
          const at = x.offset + n0 * CHW;
          f32.set(X.subarray(at, at + nc * CHW), stage >> 2);
          for (let j = 0; j < nc; j++) e.copy(xBlock + j * xStride * 4, stage + j * CHW * 4, xt, xRuns.src.length, zero, 1 << 30);
        } else for (let j = 0; j < nc; j++) gather(f32, (xBlock >> 2) + j * xStride, X, x.offset + (n0 + j) * sN, xRuns);
        for (let gi = 0; gi < G; gi++) {
          const ap = aBlock + gi * aFloats * 4;
          for (let k0 = 0; k0 < Kg; k0 += KC) {
            const kc = Math.min(KC, Kg - k0);
            for (let i = 0; i < mT; i++) {
              const rows = Math.min(MR, s.Og - i * MR);
              for (let j = 0; j < nc; j++) {
                const bp = xBlock + (j * xStride + gi * s.Cg * g.chan) * 4;
                const cp = cBlock + (j * s.O + gi * s.Og + i * MR) * Pt * 4;
                e.fwd[rows](ap + (i * Kg + k0) * MR * 4, bp, cp, nT, kc, Pt * 4, tBlock + k0 * 4, k0 > 0 ? 1 : 0);
              }
            }
          }
        }
        // the grid's rows into NCHW, dropping the columns past OW, plus the bias (an f32 add, as the gpu.js epilogue)
        for (let j = 0; j < nc; j++) e.copy(stage + j * s.O * plane * 4, cBlock + j * s.O * Pt * 4, ot, s.O * s.OH, bBlock, s.OH);
        out.set(f32.subarray(stage >> 2, (stage >> 2) + nc * s.O * plane), n0 * s.O * plane);
      }
    } finally {
      sc.free();
    }
    return out;
  };
  return {
    source: label(s, 'forward'),
    outSize,
    inputs: bias ? [x.buffer, w.buffer, bias.buffer] : [x.buffer, w.buffer],
    scalars: [],
    native,
    work: Kg,
    op: 'conv2d',
  };
}

/** gx [N, C, H, W] from gy [N, O, OH, OW] and w. */
export function wasmConvGradInputSpec(s: ConvShape, gy: StridedRef, w: StridedRef): KernelSpec {
  const g = imageGrid(s);
  const G = s.O / s.Og;
  const { Kg, Pt } = g;
  const nT = Pt / NR;
  const mT = Math.ceil(Kg / MR);
  const aFloats = mT * MR * s.Og;
  const table = new Int32Array(mT * MR);
  table.set(g.koff);
  const imageSize = s.C * s.H * s.W;
  const gSpread = new Spreader(gradRunsOf(s, g, gy), gy.strides[0], denseExtent(gy));
  // gx is made contiguous; the cells no tap reads stay 0
  const outRuns = imageRuns(s, g, s.H * s.W, s.W, 1);
  const covered = outRuns.count.reduce((a, b) => a + b, 0);
  const native = (args: Float32Array[]): Float32Array => {
    const [GY, Wt] = args;
    const e = convEngine();
    const sc = new Scratch(e.arena);
    const out = takeOutput(s.N * imageSize);
    // input cells no tap reads (a stride past the kernel's reach) get no run: zero, in a reused array too
    if (covered < imageSize) out.fill(0);
    try {
      // A = W_g^T [Kg, Og]: the weight's rows read down their columns
      const aBlock = packedWeights(e, sc, Wt, w, s, 'gx');
      const gp = gSpread.prepare(e, sc);
      const gyBlock = sc.alloc(s.O * Pt);
      const xBlock = sc.alloc(g.image + g.slack);
      const tBlock = sc.alloc(table.length);
      const f32 = e.arena.f32;
      f32.fill(0, gyBlock >> 2, (gyBlock >> 2) + s.O * Pt);
      writeTable(e.arena, tBlock, table);
      for (let n = 0; n < s.N; n++) {
        gSpread.run(e, f32, gyBlock >> 2, GY, gy.offset, n, gp);
        f32.fill(0, xBlock >> 2, (xBlock >> 2) + g.image + g.slack);
        for (let gi = 0; gi < G; gi++) {
          const ap = aBlock + gi * aFloats * 4;
          const cb = xBlock + gi * s.Cg * g.chan * 4;
          for (let k0 = 0; k0 < s.Og; k0 += KC) {
            const kc = Math.min(KC, s.Og - k0);
            const bp = gyBlock + (gi * s.Og + k0) * Pt * 4;
            for (let i = 0; i < mT; i++) {
              const rows = Math.min(MR, Kg - i * MR);
              e.gx[rows](ap + (i * s.Og + k0) * MR * 4, bp, cb, nT, kc, Pt * 4, tBlock + i * MR * 4);
            }
          }
        }
        scatter(out, n * imageSize, f32, xBlock >> 2, outRuns);
      }
    } finally {
      sc.free();
    }
    return out;
  };
  return { source: label(s, 'grad input'), outSize: s.N * imageSize, inputs: [gy.buffer, w.buffer], scalars: [], native, work: s.Og, op: 'conv2d' };
}

/** gW [O, Cg, kH, kW] from gy [N, O, OH, OW] and x. */
export function wasmConvGradWeightSpec(s: ConvShape, gy: StridedRef, x: StridedRef): KernelSpec {
  const g: ImageGrid = imageGrid(s, imageGrid(s).Kg % 2);
  const G = s.O / s.Og;
  const { Kg, Pt } = g;
  const ldo = g.koff.length;
  const gSpread = new Spreader(gradRunsOf(s, g, gy), gy.strides[0], denseExtent(gy));
  const xSpread = new Spreader(runsOf(s, g, x), x.strides[0], denseExtent(x));
  const native = (args: Float32Array[]): Float32Array => {
    const [GY, X] = args;
    const e = convEngine();
    const sc = new Scratch(e.arena);
    const out = takeOutput(s.O * Kg);
    try {
      const gyBlock = sc.alloc(s.O * Pt);
      const xBlock = sc.alloc(g.image + g.slack);
      const tBlock = sc.alloc(ldo);
      const oBlock = sc.alloc(s.O * ldo);
      const gp = gSpread.prepare(e, sc);
      const xp = xSpread.prepare(e, sc);
      const f32 = e.arena.f32;
      f32.fill(0, gyBlock >> 2, (gyBlock >> 2) + s.O * Pt);
      f32.fill(0, xBlock >> 2, (xBlock >> 2) + g.image + g.slack);
      f32.fill(0, oBlock >> 2, (oBlock >> 2) + s.O * ldo);
      writeTable(e.arena, tBlock, g.koff);
      for (let n = 0; n < s.N; n++) {
        gSpread.run(e, f32, gyBlock >> 2, GY, gy.offset, n, gp);
        xSpread.run(e, f32, xBlock >> 2, X, x.offset, n, xp);
        for (let gi = 0; gi < G; gi++) {
          const xb = xBlock + gi * s.Cg * g.chan * 4;
          for (let o0 = 0; o0 < s.Og; o0 += MR) {
            const o = gi * s.Og + o0;
            const rows = Math.min(MR, s.Og - o0);
            e.gw[rows](gyBlock + o * Pt * 4, Pt * 4, xb, tBlock, ldo / 2, Pt / 4, oBlock + o * ldo * 4, ldo * 4);
          }
        }
      }
      const o0 = oBlock >> 2;
      for (let o = 0; o < s.O; o++) out.set(f32.subarray(o0 + o * ldo, o0 + o * ldo + Kg), o * Kg);
    } finally {
      sc.free();
    }
    return out;
  };
  return { source: label(s, 'grad weight'), outSize: s.O * Kg, inputs: [gy.buffer, x.buffer], scalars: [], native, work: Pt, op: 'conv2d' };
}
