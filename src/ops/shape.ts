/**
 * Shape and view ops. Views (reshape of contiguous data, permute, transpose, slice, expand, squeeze)
 * share storage and only change shape/strides/offset; copies go through one copy kernel.
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { KernelBuilder, lit } from '../backend/kernel-builder';
import { commonDevice, isContiguousTensor, ref, runKernel, mapKernel } from './kernel';
import { contiguousStrides, fmtShape, inferShape, normDim, numelOf, sameShape } from '../tensor/shape';
import { backendFor } from '../backend/devices';
import type { DeviceName } from '../backend/device';
import { sumTo } from './sum-to';

function makeView(x: Tensor, shape: number[], strides: number[], offset: number): Tensor {
  return new Tensor(x.storage, shape, strides, offset);
}

/** A contiguous copy (the identity when x already is contiguous). */
export function contiguous(x: Tensor): Tensor {
  if (isContiguousTensor(x)) return x;
  return clone(x);
}

export function clone(x: Tensor): Tensor {
  const y = mapKernel('clone', [x], ([v]) => v);
  return record(y, 'clone', [x], (g) => [g]);
}

export function reshape(x: Tensor, shape: number[]): Tensor {
  const to = inferShape('reshape', x.shape, shape);
  if (sameShape(to, x.shape)) return x;
  const src = contiguous(x);
  const y = makeView(src, to, contiguousStrides(to), src.offset);
  return record(y, 'reshape', [src], (g) => [reshape(g, x.shape)]);
}

export function view(x: Tensor, shape: number[]): Tensor {
  if (!isContiguousTensor(x)) {
    throw new Error(
      `view: tensor of shape ${fmtShape(x.shape)} is not contiguous (strides ${fmtShape(x.strides)}); use reshape() or contiguous().view()`,
    );
  }
  return reshape(x, shape);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim('flatten', startDim, x.ndim);
  const e = normDim('flatten', endDim, x.ndim);
  if (s > e) throw new Error(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  return reshape(x, [...x.shape.slice(0, s), numelOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

export function permute(x: Tensor, dims: number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: got ${dims.length} dims ${fmtShape(dims)} for a tensor of shape ${fmtShape(x.shape)}`);
  const p = dims.map((d) => normDim('permute', d, x.ndim));
  if (new Set(p).size !== p.length) throw new Error(`permute: dims ${fmtShape(dims)} repeat a dimension`);
  const y = makeView(
    x,
    p.map((d) => x.shape[d]),
    p.map((d) => x.strides[d]),
    x.offset,
  );
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => (inv[d] = i));
  return record(y, 'permute', [x], (g) => [permute(g, inv)], [], { dims: p });
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  if (x.ndim < 2) return x;
  const a = normDim('transpose', d0, x.ndim);
  const b = normDim('transpose', d1, x.ndim);
  const p = x.shape.map((_, i) => i);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim('unsqueeze', dim, x.ndim + 1);
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshapeView(x, shape, 'unsqueeze');
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined)
    return reshapeView(
      x,
      x.shape.filter((s) => s !== 1),
      'squeeze',
    );
  const d = normDim('squeeze', dim, x.ndim);
  if (x.shape[d] !== 1) return x;
  return reshapeView(
    x,
    x.shape.filter((_, i) => i !== d),
    'squeeze',
  );
}

/** Reshape that only inserts/removes size-1 dims: always a view, whatever the strides. */
function reshapeView(x: Tensor, shape: number[], op: string): Tensor {
  const strides: number[] = [];
  let k = 0;
  for (const s of shape) {
    while (k < x.ndim && x.shape[k] === 1 && s !== 1) k++;
    if (s === 1 && !(k < x.ndim && x.shape[k] === 1)) strides.push(0);
    else strides.push(x.strides[k++]);
  }
  const y = makeView(x, shape, strides, x.offset);
  return record(y, op, [x], (g) => [reshape(g, x.shape)]);
}

export function expand(x: Tensor, shape: number[]): Tensor {
  if (shape.length < x.ndim) throw new Error(`expand: cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  const lead = shape.length - x.ndim;
  const strides = shape.map((s, i) => {
    if (i < lead) {
      if (!Number.isInteger(s) || s < 0)
        throw new Error(`expand: new leading dim ${i} must be a size (got ${s}) when expanding ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
      return 0;
    }
    const d = x.shape[i - lead];
    if (s === -1 || s === d) return x.strides[i - lead];
    if (d === 1) return 0;
    throw new Error(`expand: cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  });
  const to = shape.map((s, i) => (s === -1 ? x.shape[i - lead] : s));
  if (sameShape(to, x.shape)) return x;
  const y = makeView(x, to, strides, x.offset);
  return record(y, 'expand', [x], (g) => [sumTo(g, x.shape)]);
}

export function slice(x: Tensor, dim: number, start: number, end?: number, step = 1): Tensor {
  const d = normDim('slice', dim, x.ndim);
  const n = x.shape[d];
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = clampIdx(start);
  const e = Math.max(clampIdx(end ?? n), s);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  shape[d] = len;
  const strides = [...x.strides];
  strides[d] *= step;
  const y = makeView(x, shape, strides, x.offset + s * x.strides[d]);
  return record(y, 'slice', [x], (g) => [sliceBackward(g, x.shape, d, s, step)], [], { dim: d, start: s, end: e, step });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normDim('narrow', dim, x.ndim);
  const s = start < 0 ? start + x.shape[d] : start;
  if (s < 0 || length < 0 || s + length > x.shape[d]) {
    throw new Error(`narrow: start ${start} + length ${length} exceeds dimension ${d} of size ${x.shape[d]} (shape ${fmtShape(x.shape)})`);
  }
  return slice(x, d, s, s + length);
}

/** Scatters a slice's gradient into zeros of the sliced tensor's shape. */
function sliceBackward(g: Tensor, shape: number[], d: number, start: number, step: number): Tensor {
  const kb = new KernelBuilder(shape);
  const o = kb.outIndex();
  const k = kb.let(`${o[d]} - ${start}`, 'k');
  const q = kb.let(`Math.floor(${k} / ${step})`, 'q');
  const inside = kb.let(`(${k} >= 0 && ${k} - ${q} * ${step} == 0 && ${q} < ${g.shape[d]}) ? 1.0 : 0.0`, 'm');
  const idx = o.map((v, i) => (i === d ? `Math.min(Math.max(${q}, 0.0), ${lit(Math.max(g.shape[d] - 1, 0))})` : v));
  const val = g.shape[d] === 0 ? '0.0' : `(${inside} > 0.0 ? ${kb.at(ref(g), idx)} : 0.0)`;
  return runKernel(kb, val, g.device);
}

export function cat(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('cat: expected a non-empty list of tensors');
  const device = commonDevice('cat', ...xs);
  const first = xs[0];
  const d = normDim('cat', dim, first.ndim);
  xs.forEach((t, k) => {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new Error(
        `cat: tensor ${k} has shape ${fmtShape(t.shape)}, expected ${fmtShape(first.shape.map((s, i) => (i === d ? '*' : s)) as any)} (all dims but ${d} must match)`,
      );
    }
  });
  const shape = [...first.shape];
  shape[d] = xs.reduce((n, t) => n + t.shape[d], 0);
  const kb = new KernelBuilder(shape);
  kb.op = 'cat';
  const o = kb.outIndex();
  const acc = kb.let('0.0', 'c');
  let offset = 0;
  let branches = 0; // zero-size parts emit no branch, so the first emitted one opens the if-chain
  xs.forEach((t) => {
    if (t.shape[d] === 0) return;
    const idx = o.map((v, i) => (i === d ? `(${v} - ${offset})` : v));
    kb.emit(`${branches++ ? 'else ' : ''}if (${o[d]} < ${offset + t.shape[d]}) { ${acc} = ${kb.at(ref(t), idx)}; }`);
    offset += t.shape[d];
  });
  const y = runKernel(kb, acc, device);
  const starts: number[] = [];
  xs.reduce((s, t) => (starts.push(s), s + t.shape[d]), 0);
  return record(y, 'cat', xs, (g) => xs.map((t, k) => contiguous(slice(g, d, starts[k], starts[k] + t.shape[d]))), [], { dim: d });
}

export function stack(xs: Tensor[], dim = 0): Tensor {
  if (!xs.length) throw new Error('stack: expected a non-empty list of tensors');
  const d = normDim('stack', dim, xs[0].ndim + 1);
  xs.forEach((t, k) => {
    if (!sameShape(t.shape, xs[0].shape)) throw new Error(`stack: tensor ${k} has shape ${fmtShape(t.shape)}, expected ${fmtShape(xs[0].shape)}`);
  });
  return cat(
    xs.map((t) => unsqueeze(t, d)),
    d,
  );
}

/** Copies a tensor to another device (through host memory); gradients flow back. */
export function toDevice(x: Tensor, device: DeviceName): Tensor {
  if (x.device === device) return x;
  const y = Tensor.fromBuffer(backendFor(device).upload(x.dataSync(), 'to'), x.shape);
  return record(y, 'to', [x], (g) => [toDevice(g, x.device)]);
}
