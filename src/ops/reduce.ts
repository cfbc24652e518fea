/** Reductions over any set of dims, with keepdim; each with its gradient rule. */
import { Tensor } from '../tensor/tensor';
import { record, observeOp } from '../autograd/node';
import { KernelBuilder, intOf } from '../backend/kernel-builder';
import { backendFor } from '../backend/devices';
import { MAX_LOOP, isContiguousTensor, ref, runKernel } from './kernel';
import { noGrad } from '../autograd/grad-mode';
import { fmtShape, normDim, normDims, numelOf, Shape } from '../tensor/shape';
import { mul, div, sub, eq } from './elementwise';
import { expand, reshape } from './shape';

interface Reducer {
  init: string;
  /** statement(s) folding value `v` (at flat reduced position `r`) into accumulator `acc` */
  step: (acc: string, v: string, r: string, kb: KernelBuilder) => void;
  result?: (acc: string) => string;
  extra?: (kb: KernelBuilder) => void;
}

/** The dims to reduce. A 0-d tensor accepts dim 0 / -1 (as PyTorch) and has nothing to reduce. */
function reduceDims(op: string, dim: number | readonly number[] | undefined, ndim: number): number[] {
  const dims = normDims(op, dim, ndim);
  return ndim === 0 ? [] : dims;
}

function reducedShape(shape: Shape, dims: number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/**
 * Each output cell loops over the reduced dims of its slice of x: one kernel when they hold at most
 * MAX_LOOP elements, else two passes (partials over chunks of MAX_LOOP, then a reduce of the partials).
 * `combine` reduces the partials (default: the same reducer; argmax/argmin need their own).
 */
function reduceKernel(op: string, x: Tensor, dims: number[], keepdim: boolean, r: Reducer, combine?: (partials: Tensor) => Tensor): Tensor {
  const outShape = reducedShape(x.shape, dims, keepdim);
  const count = numelOf(dims.map((d) => x.shape[d]));
  if (count === 0 && r.init.includes('1e38'))
    throw new Error(`${op}: cannot reduce over an empty dimension of a tensor of shape ${fmtShape(x.shape)}`);
  if (count <= MAX_LOOP) return reducePass(x, dims, outShape, r, count, 1);
  const parts = Math.ceil(count / MAX_LOOP);
  const kept = reducedShape(x.shape, dims, false);
  const partials = reducePass(x, dims, [...kept, parts], r, MAX_LOOP, parts);
  const y = combine ? combine(partials) : reduceKernel(op, partials, [kept.length], false, r);
  partials.dispose();
  return reshape(y, outShape);
}

/**
 * One reduce kernel. Output cells are (kept index[, part]): with `parts` > 1 the last output dim picks a
 * chunk of `chunk` consecutive reduced positions (r = part * chunk + c, c < chunk, r < count).
 */
function reducePass(x: Tensor, dims: number[], outShape: number[], r: Reducer, chunk: number, parts: number): Tensor {
  const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const redShape = dims.map((d) => x.shape[d]);
  const count = numelOf(redShape);
  const kb = new KernelBuilder(outShape);
  const keptShape = kept.map((d) => x.shape[d]);
  const vars = kb.decompose('i', parts > 1 ? [...keptShape, parts] : keptShape);
  const keptVars = vars.slice(0, keptShape.length);
  const acc = kb.let(r.init, 'acc');
  r.extra?.(kb);
  const xr = ref(x);
  kb.loop(chunk, (c) => {
    const rv = parts > 1 ? kb.let(`${vars[keptShape.length]} * ${chunk} + ${c}`, 'rr') : c;
    if (parts > 1) kb.emit(`if (${rv} < ${count}) {`);
    const redVars = kb.decompose(rv, redShape);
    const idx = x.shape.map((_, d) => (dims.includes(d) ? redVars[dims.indexOf(d)] : keptVars[kept.indexOf(d)]));
    const v = kb.let(kb.at(xr, idx));
    r.step(acc, v, rv, kb);
    if (parts > 1) kb.emit('}');
  });
  return runKernel(kb, r.result ? r.result(acc) : acc, x.device);
}

/** Broadcasts a reduced gradient back over the reduced dims. */
function unreduce(g: Tensor, shape: Shape, dims: number[], keepdim: boolean): Tensor {
  const kept = keepdim ? g : reshape(g, reducedShape(shape, dims, true));
  return expand(kept, [...shape]);
}

/**
 * Sums on webasm with the last dim on the SIMD lanes (BatchNorm's statistics, bias gradients, losses): one
 * thread per (kept index, last-dim position) loops over the reduced positions, so each read is
 * `<uniform> + this.thread.x`, a vector load; the generic kernel gives each thread a slice whose reads are
 * 4-lane gathers. When the last dim is reduced too, a second pass sums it. Null where it does not apply
 * (other backends, a strided or short last dim, very long sums).
 */
function laneSum(x: Tensor, dims: number[], keepdim: boolean): Tensor | null {
  const outShape = reducedShape(x.shape, dims, keepdim);
  // trailing reduced dims of a contiguous tensor act as one longer lane row ([N, C, 7, 7] -> [N, C, 49])
  let merged = x;
  let mdims = dims;
  while (merged.ndim >= 2 && mdims.includes(merged.ndim - 1) && mdims.includes(merged.ndim - 2) && isContiguousTensor(merged)) {
    const n = merged.ndim;
    const m = merged;
    merged = noGrad(() => reshape(m, [...m.shape.slice(0, n - 2), m.shape[n - 2] * m.shape[n - 1]]));
    mdims = mdims.filter((d) => d !== n - 1);
  }
  const y = laneSumOf(merged, mdims);
  return y && reshape(y, outShape);
}

function laneSumOf(x: Tensor, dims: number[]): Tensor | null {
  const last = x.ndim - 1;
  const W = x.shape[last];
  if (last < 0 || dims.length === 0 || W < 8 || x.strides[last] !== 1 || !backendFor(x.device).prefersRowGrid) return null;
  const looped = dims.filter((d) => d !== last);
  const loopShape = looped.map((d) => x.shape[d]);
  const count = numelOf(loopShape);
  if (looped.length === 0 || count < 2 || count > MAX_LANE_SUM || loopShape.some((n) => n > MAX_LOOP)) return null;
  const kept = x.shape.map((_, i) => i).filter((i) => !looped.includes(i)); // includes the last dim
  const keptShape = kept.map((d) => x.shape[d]);
  const kb = new KernelBuilder(keptShape.length === 1 ? [1, W] : keptShape, undefined, { rowGrid: true });
  const o = kb.outIndex();
  const keptVars = keptShape.length === 1 ? [o[1]] : o;
  const acc = kb.let('0.0', 'acc');
  const xr = ref(x);
  // one integer loop per reduced dim (no float div/mod to split a flat counter), in row-major order
  const loopVars: string[] = [];
  const nest = (k: number): void => {
    if (k === looped.length) {
      const idx = x.shape.map((_, d) => (looped.includes(d) ? loopVars[looped.indexOf(d)] : keptVars[kept.indexOf(d)]));
      kb.emit(`${acc} += ${kb.at(xr, idx)};`);
      return;
    }
    kb.loop(loopShape[k], (r) => {
      loopVars[k] = intOf(r);
      nest(k + 1);
    });
  };
  nest(0);
  kb.work = count;
  let y = runKernel(kb, acc, x.device);
  if (dims.includes(last)) {
    const partial = y;
    y = reduceKernel('sum', partial, [partial.ndim - 1], false, SUM);
    partial.dispose();
  }
  return y;
}

/** Longest sum one lane accumulates sequentially (beyond it, the generic kernel's chunked partial sums). */
const MAX_LANE_SUM = 1 << 16;

const SUM: Reducer = { init: '0.0', step: (acc, v, _r, kb) => kb.emit(`${acc} += ${v};`) };

export function sum(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const dims = reduceDims('sum', dim, x.ndim);
  const y = laneSum(x, dims, keepdim) ?? reduceKernel('sum', x, dims, keepdim, SUM);
  return record(y, 'sum', [x], (g) => [unreduce(g, x.shape, dims, keepdim)], [], { dims, keepdim });
}

export function mean(x: Tensor, dim?: number | number[], keepdim = false): Tensor {
  const dims = reduceDims('mean', dim, x.ndim);
  const n = numelOf(dims.map((d) => x.shape[d]));
  return div(sum(x, dims, keepdim), n);
}

/** Unbiased by default; one element gives NaN (0 / 0), as in PyTorch. */
export function variance(x: Tensor, dim?: number | number[], opts: { keepdim?: boolean; unbiased?: boolean } = {}): Tensor {
  const dims = reduceDims('var', dim, x.ndim);
  const n = numelOf(dims.map((d) => x.shape[d]));
  const centered = sub(x, mean(x, dims, true));
  return div(sum(mul(centered, centered), dims, opts.keepdim ?? false), opts.unbiased === false ? n : n - 1);
}

function extreme(op: 'max' | 'min', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  const dims = reduceDims(op, dim, x.ndim);
  const better = op === 'max' ? '>' : '<';
  const y = reduceKernel(op, x, dims, keepdim, {
    init: op === 'max' ? '-1e38 * 10.0' : '1e38 * 10.0',
    // NaN propagates, as in PyTorch
    step: (acc, v, _r, kb) => kb.emit(`if (${v} ${better} ${acc} || ${v} != ${v}) { ${acc} = ${v}; }`),
  });
  // the gradient is shared evenly between tied extremes (PyTorch's amax/amin rule)
  return record(
    y,
    op,
    [x],
    (g) => {
      const yb = unreduce(y, x.shape, dims, keepdim);
      const mask = eq(x, yb);
      const count = unreduce(sum(mask, dims, keepdim), x.shape, dims, keepdim);
      return [div(mul(unreduce(g, x.shape, dims, keepdim), mask), count)];
    },
    [x, y],
    { dims, keepdim },
  );
}

export const max = (x: Tensor, dim?: number, keepdim = false) => extreme('max', x, dim, keepdim);
export const min = (x: Tensor, dim?: number, keepdim = false) => extreme('min', x, dim, keepdim);

function argExtreme(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim !== undefined) normDim(op, dim, x.ndim);
  const flat = dim === undefined || x.ndim === 0;
  const src = flat ? reshape(x, [x.numel()]) : x;
  const d = flat ? 0 : normDim(op, dim, x.ndim);
  const better = op === 'argmax' ? '>' : '<';
  const takes = (v: string, best: string) => `${best} == ${best} && (${v} ${better} ${best} || ${v} != ${v})`;
  let best = '';
  const y = reduceKernel(
    op,
    src,
    [d],
    flat ? false : keepdim,
    {
      init: '0.0',
      extra: (kb) => (best = kb.let(op === 'argmax' ? '-1e38 * 10.0' : '1e38 * 10.0', 'best')),
      // first index wins ties, and the first NaN wins outright (NaN is both the max and the min, as in PyTorch)
      step: (acc, v, r, kb) => kb.emit(`if (${takes(v, best)}) { ${best} = ${v}; ${acc} = ${r}; }`),
    },
    (indices) => {
      // chunked: `indices` [...kept, parts] holds each chunk's best index; take the best of their values,
      // the earliest chunk on ties
      const parts = indices.shape[indices.ndim - 1];
      const kb = new KernelBuilder(indices.shape.slice(0, -1));
      const o = kb.outIndex();
      const acc = kb.let('0.0', 'acc');
      const bestV = kb.let(op === 'argmax' ? '-1e38 * 10.0' : '1e38 * 10.0', 'best');
      kb.loop(parts, (p) => {
        const j = kb.let(kb.at(ref(indices), [...o, p]), 'j');
        const at = src.shape.map((_, k) => (k === d ? j : o[k < d ? k : k - 1]));
        const v = kb.let(kb.at(ref(src), at));
        kb.emit(`if (${takes(v, bestV)}) { ${bestV} = ${v}; ${acc} = ${j}; }`);
      });
      return runKernel(kb, acc, src.device);
    },
  );
  return observeOp(y, op, [x], { dim: flat ? null : d, keepdim: flat ? false : keepdim });
}

export const argmax = (x: Tensor, dim?: number, keepdim = false) => argExtreme('argmax', x, dim, keepdim);
export const argmin = (x: Tensor, dim?: number, keepdim = false) => argExtreme('argmin', x, dim, keepdim);

export { sumTo } from './sum-to';
