/**
 * Batched matrix multiply with NumPy-style broadcasting of batch dims (torch.matmul semantics).
 *
 * One kernel definition, `matmulKernel`, with variants chosen by backend and shape:
 *  - 'tiled4' (host-memory backends, cpu and webasm): a thread grid [N, ceil(M/4), batch]; each thread
 *    returns Array(4), rows 4y..4y+3 of column x. On webasm's f32x4 SIMD a quad of threads is 4
 *    consecutive columns, so per k step one vector load of a row of B (B is handed over row-major: see
 *    packed-operand.ts; src/backend/wasm-codegen.ts emits the `v128.load`) feeds 16 multiply-adds against
 *    4 lane-uniform (broadcast) reads of A. The k loop is unrolled by 2 into one accumulator set
 *    (TILED_UNROLL/TILED_SETS, measured); index arithmetic is kept in integers (`r | 0`, thread ids).
 *  - 'rowvec' (host-memory backends, M < 4, or batched with M % 4 != 0): grid [N, M, batch], one output
 *    per thread, row y uniform across a quad; k unrolled by 4 into 4 accumulators.
 *  - 'quads' (GL, N % 4 == 0): one thread per 4 consecutive output cells (row m, columns n..n+3: one
 *    RGBA texel of the result, which is how GL stores every tensor), k stepped by 4. Per 4 k steps it
 *    fetches A[m, k..k+3] (one texel where A is row-major with K % 4 == 0, else 4 reads) and the 4x4 block
 *    of B (4 texels where B's rows or columns are texel-aligned, else 16 reads) for 16 multiply-adds,
 *    where 'flat' makes 32 reads for them.
 *  - 'flat' (GL, N % 4 != 0): one thread per flat output cell, the plain dot product.
 * Every variant sums k in the same order for a given shape and backend, with or without an epilogue,
 * so a fused kernel (src/graph) gives the same bits as matmul followed by the elementwise ops (on
 * webasm and GL, f32 throughout; the cpu backend keeps f64 inside a kernel, so there the unfused
 * form rounds once more and the last bit can differ).
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { option } from '../platform/options';
import { KernelBuilder, StridedRef, intOf } from '../backend/kernel-builder';
import { backendFor } from '../backend/devices';
import type { DeviceName } from '../backend/device';
import { commonDevice, MAX_LOOP, ref, runKernel } from './kernel';
import { broadcastShapes, fmtShape, numelOf } from '../tensor/shape';
import { clone, reshape, slice, transpose, unsqueeze, squeeze } from './shape';
import { noGrad } from '../autograd/grad-mode';
import { tracing } from '../backend/gpujs-backend';
import { add } from './elementwise';
import { sumTo } from './reduce';
import { packedOperand } from './packed-operand';
import { directMatmul } from '../backend/direct-lowering';

/** Below this many rows of A, packing B on every call costs more than it saves (only a cached copy is used). */
const PACK_MIN_ROWS = 8;

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new Error('matmul: expected two tensors');
  if (a.ndim === 0 || b.ndim === 0)
    throw new Error(`matmul: both arguments need at least 1 dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.ndim === 1 && b.ndim === 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), []);
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) {
    throw new Error(`matmul: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${M}x${K} and ${K2}x${N})`);
  }
  const device = commonDevice('matmul', a, b);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  // a direct lowering (webasm: packed SIMD gemm) where the backend has one; it packs strided operands itself
  const direct = directMatmul(device, ref(a), ref(b), { batch, M, K, N });
  const y = direct ? Tensor.fromBuffer(backendFor(device).run(direct), [...batch, M, N]) : gpujsMatmul(a, b, { batch, M, K, N, device });
  if (!y) return matmulSplitK(a, b, K);
  return record(
    y,
    'matmul',
    [a, b],
    (g) => [a.requiresGrad ? sumTo(matmul(g, transpose(b)), a.shape) : null, b.requiresGrad ? sumTo(gradOfB(a, b, g), b.shape) : null],
    [a, b],
  );
}

/**
 * a @ b + bias (bias [N], broadcast over rows): nn.Linear's forward. Where the backend lowers matmul
 * directly (webasm), the bias is added in the same pass over the output, with the same f32 rounding as
 * the separate add; elsewhere it is matmul then add.
 */
export function matmulAddBias(a: Tensor, b: Tensor, bias: Tensor): Tensor {
  const direct =
    a instanceof Tensor &&
    b instanceof Tensor &&
    bias instanceof Tensor &&
    a.ndim >= 2 &&
    b.ndim === 2 &&
    bias.ndim === 1 &&
    a.shape[a.ndim - 1] === b.shape[0] &&
    bias.shape[0] === b.shape[1] &&
    a.device === b.device &&
    bias.device === a.device &&
    !bias.isDisposed &&
    isRowMajorBatch(a)
      ? directMatmul(a.device, rowsOf(a), ref(b), { batch: [], M: numelOf(a.shape.slice(0, -1)), K: b.shape[0], N: b.shape[1] }, undefined, {
          ref: ref(bias),
        })
      : null;
  if (!direct) return add(matmul(a, b), bias);
  const y = Tensor.fromBuffer(backendFor(a.device).run(direct), [...a.shape.slice(0, -1), b.shape[1]]);
  return record(
    y,
    'matmul',
    [a, b, bias],
    (g) => [
      a.requiresGrad ? sumTo(matmul(g, transpose(b)), a.shape) : null,
      b.requiresGrad ? sumTo(gradOfB(a, b, g), b.shape) : null,
      bias.requiresGrad ? sumTo(g, bias.shape) : null,
    ],
    [a, b, bias],
  );
}

/** `a` as one [M, K] matrix of rows (isRowMajorBatch). */
function rowsOf(a: Tensor): StridedRef {
  const r = ref(a);
  const n = a.ndim;
  return { ...r, shape: [numelOf(a.shape.slice(0, -1)), a.shape[n - 1]], strides: [a.strides[n - 2], a.strides[n - 1]] };
}

/** Leading dims of `a` fold into rows of one [M, K] matrix (rows evenly spaced by the stride of dim -2). */
function isRowMajorBatch(a: Tensor): boolean {
  if (a.ndim === 2) return true;
  let expect = a.strides[a.ndim - 2];
  for (let d = a.ndim - 2; d >= 0; d--) {
    if (a.shape[d] !== 1 && a.strides[d] !== expect) return false;
    expect *= a.shape[d];
  }
  return true;
}

/** The gpu.js kernel (the reference path); null when K is over one kernel's loop budget. */
function gpujsMatmul(a: Tensor, b: Tensor, s: MatmulShape): Tensor | null {
  if (s.K > MAX_LOOP) return null;
  // host backends read B's rows with vector loads: hand them a row-major (packed) B
  const host = backendFor(s.device).supportsTiles;
  const bRows = host ? packedOperand(b, { cacheOnly: s.M < PACK_MIN_ROWS }) : b;
  const aRows = host ? a : glRowsOfA(a, s);
  const kb = matmulKernel(ref(aRows), ref(bRows), s);
  kb.op = 'matmul';
  const y = runKernel(kb, kb.result, s.device);
  if (aRows !== a && !tracing.tracer) aRows.dispose();
  return y;
}

/**
 * GL, quads matmul: A with rows that are not texel runs (a transposed view: the weight gradient g^T x)
 * costs 4 scalar reads per 4 k steps where a row-major A costs one texel read, in the innermost loop (3.6x
 * the time of the same-size forward product in the MLP). A row-major copy of A costs one pass over M*K cells.
 */
function glRowsOfA(a: Tensor, s: MatmulShape): Tensor {
  if (matmulVariant(s) !== 'quads' || s.K % 4 !== 0 || s.K < 8 || quadAligned(ref(a), -1)) return a;
  return noGrad(() => clone(a));
}

/**
 * dL/db = a^T g. When b is the transposed view of a row-major matrix (nn.Linear's x @ W^T), the gradient
 * is computed as (g^T a)^T: the same products summed over the same rows, but laid out like W, so W.grad
 * needs no transposing copy (a 200K-element gather per step in the MLP bench).
 */
function gradOfB(a: Tensor, b: Tensor, g: Tensor): Tensor {
  const transposedView = a.ndim === 2 && b.ndim === 2 && b.strides[0] === 1 && b.strides[1] === b.shape[0] && b.shape[0] > 1 && b.shape[1] > 1;
  return transposedView ? transpose(matmul(transpose(g), a)) : matmul(transpose(a), g);
}

/**
 * K beyond one kernel's loop budget (MAX_LOOP; GL silently stops after ~65,535 iterations): the sum of
 * matmuls over K-chunks. Built from differentiable ops, so gradients follow the pieces.
 */
function matmulSplitK(a: Tensor, b: Tensor, K: number): Tensor {
  let acc: Tensor | null = null;
  for (let s = 0; s < K; s += MAX_LOOP) {
    const e = Math.min(s + MAX_LOOP, K);
    const part = matmul(slice(a, -1, s, e), slice(b, -2, s, e));
    acc = acc ? add(acc, part) : part;
  }
  return acc!;
}

export type MatmulVariant = 'tiled4' | 'rowvec' | 'quads' | 'flat';

export interface MatmulShape {
  batch: number[];
  M: number;
  K: number;
  N: number;
  device: DeviceName;
}

/** What the graph tracer needs to rebuild this matmul with an epilogue. */
export interface MatmulMeta extends MatmulShape {
  kind: 'matmul';
  a: StridedRef;
  b: StridedRef;
}

/**
 * Maps the accumulated dot product of one output cell to the value stored; `out` is that cell's
 * multi-index ([...batch, m, n]) as kernel expressions. Used by the graph compiler to fuse
 * bias + activation into the matmul.
 */
export type MatmulEpilogue = (acc: string, kb: KernelBuilder, out: string[]) => string;

export function matmulVariant(s: MatmulShape, override?: MatmulVariant): MatmulVariant {
  const forced = override ?? option('matmul');
  if (!backendFor(s.device).supportsTiles) return s.N % 4 === 0 && forced !== 'flat' ? 'quads' : 'flat';
  if (forced === 'flat' || forced === 'rowvec') return forced;
  if (forced === 'tiled4') return s.M >= 1 && (numelOf(s.batch) === 1 || s.M % 4 === 0) ? 'tiled4' : 'rowvec';
  if (s.M < 4) return 'rowvec';
  return numelOf(s.batch) === 1 || s.M % 4 === 0 ? 'tiled4' : 'rowvec';
}

export interface MatmulKernel extends KernelBuilder {
  /** the expression to return */
  result: string;
}

/**
 * The matmul kernel for out[..., m, n] = sum_k a[..., m, k] * b[..., k, n] (batch dims broadcast),
 * optionally followed by an elementwise epilogue per output cell.
 */
export function matmulKernel(
  ar: StridedRef,
  br: StridedRef,
  s: MatmulShape,
  opts: { variant?: MatmulVariant; epilogue?: MatmulEpilogue } = {},
): MatmulKernel {
  const variant = matmulVariant(s, opts.variant);
  const kb =
    variant === 'tiled4'
      ? tiled4(ar, br, s, opts.epilogue)
      : variant === 'rowvec'
        ? rowvec(ar, br, s, opts.epilogue)
        : variant === 'quads'
          ? quads(ar, br, s, opts.epilogue)
          : flat(ar, br, s, opts.epilogue);
  kb.meta = { kind: 'matmul', a: ar, b: br, ...s } satisfies MatmulMeta;
  kb.work = s.K;
  return kb;
}

/** Per-operand batch index expressions (right-aligned broadcasting) from the output batch index vars. */
function batchIndexer(s: MatmulShape, outBatch: string[]) {
  return (r: StridedRef) => outBatch.slice(outBatch.length - (r.shape.length - 2));
}

/** Output batch index vars from the flat batch index `z` (thread id z in grid kernels). */
function batchVars(kb: KernelBuilder, s: MatmulShape, z: string): string[] {
  if (s.batch.length === 0) return [];
  if (s.batch.length === 1) return [z];
  return kb.decompose(z, s.batch);
}

/** k steps per loop iteration: `step` when K allows (K >= 8), else 1. */
function unrollPlan(K: number, step = 4): { main: number; step: number } {
  const s = K >= 8 ? step : 1;
  return { main: K - (K % s), step: s };
}

/**
 * tiled4's inner loop shape, measured on webasm with the codegen extensions (512^3, interleaved rounds):
 * unroll 2 with one accumulator set is ~7-12% faster than unroll 4 with two sets (fewer live v128 values,
 * fewer spills); unroll 8 and two sets are slower. (Before the extensions all shapes were within noise:
 * the gathers of B were the limit.)
 */
const TILED_UNROLL = 2;
const TILED_SETS = 1;

function tiled4(ar: StridedRef, br: StridedRef, s: MatmulShape, epilogue?: MatmulEpilogue): MatmulKernel {
  const { M, K, N } = s;
  const B = numelOf(s.batch);
  const H = Math.ceil(M / 4);
  const kb = new KernelBuilder([...s.batch, M, N], { grid: B > 1 ? [N, H, B] : [N, H], rows4: true }) as MatmulKernel;
  const ob = batchVars(kb, s, kb.threadId('z'));
  const bi = batchIndexer(s, ob);
  const col = kb.threadId('x');
  // rows of this thread; the last group of a batch-1 product may run past M: read row M-1 there (dropped later)
  const row = (c: number) => {
    const r = `${kb.threadId('y')} * 4${c ? ` + ${c}` : ''}`;
    return M % 4 === 0 ? `(${r})` : `((${r}) < ${M} ? (${r}) : ${M - 1})`;
  };
  const SETS = TILED_SETS;
  const acc = (set: number, c: number) => `c${set}_${c}`;
  for (let set = 0; set < SETS; set++) for (let c = 0; c < 4; c++) kb.emit(`let ${acc(set, c)} = 0.0;`);
  kb.emit('let bv = 0.0;');
  const body = (k: string, set: number) => {
    kb.emit(`bv = ${kb.at(br, [...bi(br), k, col])};`);
    for (let c = 0; c < 4; c++) kb.emit(`${acc(set, c)} += ${kb.at(ar, [...bi(ar), row(c), k])} * bv;`);
  };
  const { main, step } = unrollPlan(K, TILED_UNROLL);
  if (main > 0) {
    kb.loopFrom(0, main, step, (r) => {
      for (let t = 0; t < step; t++) body(t ? `(${intOf(r)} + ${t})` : intOf(r), t % SETS);
    });
  }
  if (main < K) kb.loopFrom(main, K, 1, (r) => body(intOf(r), 0));
  const outs: string[] = [];
  for (let c = 0; c < 4; c++) {
    const sum = kb.let(Array.from({ length: SETS }, (_, set) => acc(set, c)).join(' + '), 'o');
    outs.push(epilogue ? kb.let(epilogue(sum, kb, [...ob, row(c), col]), 'e') : sum);
  }
  kb.result = `[${outs.join(', ')}]`;
  return kb;
}

function rowvec(ar: StridedRef, br: StridedRef, s: MatmulShape, epilogue?: MatmulEpilogue): MatmulKernel {
  const { M, K, N } = s;
  const B = numelOf(s.batch);
  const kb = new KernelBuilder([...s.batch, M, N], { grid: B > 1 ? [N, M, B] : [N, M] }) as MatmulKernel;
  const ob = batchVars(kb, s, kb.threadId('z'));
  const bi = batchIndexer(s, ob);
  const col = kb.threadId('x');
  const row = kb.threadId('y');
  const SETS = 4;
  for (let set = 0; set < SETS; set++) kb.emit(`let c${set} = 0.0;`);
  const body = (k: string, set: number) => kb.emit(`c${set} += ${kb.at(ar, [...bi(ar), row, k])} * ${kb.at(br, [...bi(br), k, col])};`);
  const { main, step } = unrollPlan(K);
  if (main > 0) {
    kb.loopFrom(0, main, step, (r) => {
      for (let t = 0; t < step; t++) body(t ? `(${intOf(r)} + ${t})` : intOf(r), t % SETS);
    });
  }
  if (main < K) kb.loopFrom(main, K, 1, (r) => body(intOf(r), 0));
  const sum = kb.let(`(c0 + c1) + (c2 + c3)`, 'o');
  kb.result = epilogue ? kb.let(epilogue(sum, kb, [...ob, row, col]), 'e') : sum;
  return kb;
}

function flat(ar: StridedRef, br: StridedRef, s: MatmulShape, epilogue?: MatmulEpilogue): MatmulKernel {
  const kb = new KernelBuilder([...s.batch, s.M, s.N]) as MatmulKernel;
  const o = kb.outIndex();
  const bo = o.slice(0, s.batch.length);
  const [m, n] = o.slice(-2);
  const bi = batchIndexer(s, bo);
  const acc = kb.let('0.0', 'acc');
  kb.loop(s.K, (k) => kb.emit(`${acc} += ${kb.at(ar, [...bi(ar), m, k])} * ${kb.at(br, [...bi(br), k, n])};`));
  kb.result = epilogue ? kb.let(epilogue(acc, kb, o), 'e') : acc;
  return kb;
}

/**
 * Whether `r` can be read a texel at a time along dim `d`: unit stride there, and every texel-sized run
 * starting at a multiple of 4 of that dim starts at a flat index that is a multiple of 4 (GL's 4 cells per texel).
 */
function quadAligned(r: StridedRef, d: number): boolean {
  const dim = r.shape.length + d;
  if (r.strides[dim] !== 1 || r.shape[dim] % 4 !== 0 || r.offset % 4 !== 0) return false;
  return r.strides.every((st, k) => k === dim || r.shape[k] === 1 || st % 4 === 0);
}

function quads(ar: StridedRef, br: StridedRef, s: MatmulShape, epilogue?: MatmulEpilogue): MatmulKernel {
  const { M, K, N } = s;
  const kb = new KernelBuilder([...s.batch, M, N], undefined, { quads: true }) as MatmulKernel;
  // the thread's first cell: [...batch, m, n0] with n0 % 4 == 0 (N % 4 == 0: the 4 cells share batch and row)
  const o = kb.outIndex();
  const ob = o.slice(0, s.batch.length);
  const [m, n0] = o.slice(-2);
  const bi = batchIndexer(s, ob);
  const col = (j: number) => (j ? `(${n0} + ${j})` : n0);
  const aQuad = quadAligned(ar, -1);
  const bRowQuad = quadAligned(br, -1);
  const bColQuad = !bRowQuad && quadAligned(br, -2);
  for (let j = 0; j < 4; j++) kb.emit(`let c${j} = 0.0;`);
  const main = K - (K % 4);
  if (main > 0) {
    kb.loopFrom(0, main, 4, (r) => {
      const k = (i: number) => (i ? `(${intOf(r)} + ${i})` : intOf(r));
      // a[i] = A[m, k + i]
      let a: string[];
      if (aQuad) {
        const av = kb.let(kb.atQuad(ar, [...bi(ar), m, k(0)]), 'aq');
        a = [0, 1, 2, 3].map((i) => `${av}[${i}]`);
      } else a = [0, 1, 2, 3].map((i) => kb.let(kb.at(ar, [...bi(ar), m, k(i)]), 'a'));
      // b(i, j) = B[k + i, n0 + j]
      let b: (i: number, j: number) => string;
      if (bRowQuad) {
        const rows = [0, 1, 2, 3].map((i) => kb.let(kb.atQuad(br, [...bi(br), k(i), n0]), 'bq'));
        b = (i, j) => `${rows[i]}[${j}]`;
      } else if (bColQuad) {
        const cols = [0, 1, 2, 3].map((j) => kb.let(kb.atQuad(br, [...bi(br), k(0), col(j)]), 'bq'));
        b = (i, j) => `${cols[j]}[${i}]`;
      } else b = (i, j) => kb.at(br, [...bi(br), k(i), col(j)]);
      // k in order within each cell, as the other variants sum it
      for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) kb.emit(`c${j} += ${a[i]} * ${b(i, j)};`);
    });
  }
  if (main < K) {
    kb.loopFrom(main, K, 1, (r) => {
      const av = kb.let(kb.at(ar, [...bi(ar), m, intOf(r)]), 'a');
      for (let j = 0; j < 4; j++) kb.emit(`c${j} += ${av} * ${kb.at(br, [...bi(br), intOf(r), col(j)])};`);
    });
  }
  const outs = [0, 1, 2, 3].map((j) => (epilogue ? kb.let(epilogue(`c${j}`, kb, [...ob, m, col(j)]), 'e') : `c${j}`));
  kb.result = `[${outs.join(', ')}]`;
  return kb;
}
