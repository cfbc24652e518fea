/**
 * The direct WebAssembly lowering of matmul on `webasm`: a KernelSpec whose `native` runner is the packed,
 * register-tiled SIMD gemm (gemm.ts) instead of a gpu.js kernel. The spec goes through Backend.run like
 * any kernel, so limits, stats, the profiler and graph capture/replay (which re-runs a spec on new input
 * buffers of the same layout) see it as one; nothing else changes for the op.
 *
 * Switch: TSNN_WASM_MATMUL=gpujs (or `wasmMatmulConfig.enabled = false`) keeps the gpu.js tiled kernel,
 * which stays the reference the tests compare against.
 */
import type { KernelSpec } from '../buffer';
import type { StridedRef } from '../kernel-builder';
import { wasmFeatures } from './features';
import { option } from '../../platform/options';
import { gemmBatch, gemmEngine, GemmJob, MR, NR, useFma } from './gemm';
import { warnOnce } from '../../util/warn-once';
import { takeOutput } from './out-pool';

/** `enabled`: true / false overrides TSNN_WASM_MATMUL (tests); null reads it at every call (the bench sets it per runner). */
export const wasmMatmulConfig: { enabled: boolean | null } = { enabled: null };

/** Whether matmul on webasm takes the direct path now. */
export function wasmMatmulAvailable(): boolean {
  const on = wasmMatmulConfig.enabled ?? option('wasmMatmul') !== false;
  return on && wasmFeatures().simd && engineStarts();
}

let started: boolean | null = null;

/** The engine's module and memory come up (a memory reservation can fail under `ulimit -v`): else gpu.js, with a warning. */
function engineStarts(): boolean {
  if (started !== null) return started;
  try {
    gemmEngine();
    started = true;
  } catch (e) {
    started = false;
    warnOnce(`webasm: the direct WebAssembly matmul could not start (${(e as Error).message}); matmul runs on the gpu.js kernel`);
  }
  return started;
}

export interface DirectMatmulShape {
  batch: number[];
  M: number;
  K: number;
  N: number;
}

/**
 * An additive epilogue: out[z, m, n] += bias[(z % groups) * M + m] (a convolution's per-channel bias with
 * `groups` groups as the last batch dim), added in f32 after the dot product as the gpu.js epilogue does.
 */
export interface RowBias {
  ref: StridedRef;
  groups: number;
}

/**
 * out[..., m, n] += bias[n] after the product (nn.Linear's bias), in f32 as a separate add would; with
 * `relu`, then max(., 0), as a following relu would (nn.compile fuses linear -> relu this way).
 */
export interface ColBias {
  ref: StridedRef;
  relu?: boolean;
}

/** What a direct linear (matmul with ColBias) tells the graph compiler: its spec with relu applied too. */
export interface DirectLinearMeta {
  kind: 'direct-linear';
  withRelu: () => KernelSpec;
}

/**
 * out[..., m, n] = sum_k a[..., m, k] b[..., k, n], batch dims broadcast (right-aligned) as in
 * torch.matmul; a and b may be any strided views (transposes are packed directly).
 */
export function wasmMatmulSpec(a: StridedRef, b: StridedRef, s: DirectMatmulShape, rowBias?: RowBias, colBias?: ColBias): KernelSpec {
  const { batch, M, K, N } = s;
  const nb = batch.reduce((x, y) => x * y, 1);
  const outSize = nb * M * N;
  const aLay = layout(a);
  const bLay = layout(b);
  // batch offsets of each operand per flat output batch index (broadcast dims stay put)
  const aOffsets = batchOffsets(a, batch);
  const bOffsets = batchOffsets(b, batch);
  const native = (args: Float32Array[]): Float32Array => {
    const [A, B, bias] = args;
    const out = takeOutput(outSize);
    const jobs: GemmJob[] = [];
    for (let z = 0; z < nb; z++) {
      jobs.push({
        outAt: z * M * N,
        A: { data: A, offset: aOffsets[z], rs: aLay.rs, cs: aLay.cs },
        B: { data: B, offset: bOffsets[z], rs: bLay.rs, cs: bLay.cs },
      });
    }
    // a B shared by every batch entry (a weight) may be kept packed across calls; per-entry Bs are not
    const epi = colBias ? { bias: denseBias(bias, colBias.ref, N), relu: !!colBias.relu } : undefined;
    gemmBatch(out, jobs, M, K, N, nb === 1 || bLay.shared ? B : null, epi);
    if (rowBias) for (let z = 0; z < nb; z++) addRowBias(out, z * M * N, bias, rowBias, z, M, N);
    return out;
  };
  return {
    source: `/* direct wasm gemm ${MR}x${NR}${useFma() ? ' relaxed-fma' : ''}${colBias ? (colBias.relu ? ' +bias relu' : ' +bias') : ''} */ [${[...batch, M, K, N].join('x')}] a(${a.strides.join(',')}) b(${b.strides.join(',')})`,
    outSize,
    inputs: rowBias || colBias ? [a.buffer, b.buffer, (rowBias ?? colBias)!.ref.buffer] : [a.buffer, b.buffer],
    scalars: [],
    native,
    work: K,
    op: 'matmul',
    // what the graph tracer shows (explain); fuse.ts gives a native step no gpu.js epilogue, only a
    // following relu to a linear (DirectLinearMeta)
    meta: colBias
      ? colBias.relu
        ? undefined
        : ({ kind: 'direct-linear', withRelu: () => wasmMatmulSpec(a, b, s, undefined, { ...colBias, relu: true }) } satisfies DirectLinearMeta)
      : { kind: 'matmul', a, b, batch, M, K, N, device: 'webasm', direct: true },
  };
}

function addRowBias(out: Float32Array, at: number, bias: Float32Array, rb: RowBias, z: number, M: number, N: number): void {
  const g = z % rb.groups;
  const st = rb.ref.strides[0] ?? 1;
  for (let m = 0; m < M; m++) {
    const v = bias[rb.ref.offset + (g * M + m) * st];
    const row = at + m * N;
    // Float32Array stores round each sum to f32, as the f32 add of the gpu.js epilogue
    for (let n = 0; n < N; n++) out[row + n] += v;
  }
}

/** The N bias values of a (possibly strided) bias view, dense. */
function denseBias(bias: Float32Array, r: StridedRef, N: number): Float32Array {
  const st = r.strides[0] ?? 1;
  if (st === 1) return bias.subarray(r.offset, r.offset + N);
  const v = new Float32Array(N);
  for (let n = 0; n < N; n++) v[n] = bias[r.offset + n * st];
  return v;
}

function layout(r: StridedRef): { rs: number; cs: number; shared: boolean } {
  const n = r.shape.length;
  const rs = r.shape[n - 2] === 1 ? 0 : r.strides[n - 2];
  const cs = r.shape[n - 1] === 1 ? 0 : r.strides[n - 1];
  const shared = r.shape.slice(0, -2).every((d) => d === 1);
  return { rs, cs, shared };
}

function batchOffsets(r: StridedRef, batch: number[]): number[] {
  const nb = batch.reduce((x, y) => x * y, 1);
  const own = r.shape.length - 2;
  const lead = batch.length - own;
  const out = new Array<number>(nb);
  const idx = new Array<number>(batch.length).fill(0);
  for (let z = 0; z < nb; z++) {
    let off = r.offset;
    for (let d = 0; d < own; d++) if (r.shape[d] !== 1) off += idx[lead + d] * r.strides[d];
    out[z] = off;
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}
