/** Index-driven ops: indexSelect, gather and their scatter-add gradients, oneHot. Indices are float tensors holding integers. */
import { Tensor } from '../tensor/tensor';
import { record, observeOp } from '../autograd/node';
import { KernelBuilder, lit } from '../backend/kernel-builder';
import { commonDevice, MAX_LOOP, ref, runKernel } from './kernel';
import { slice } from './shape';
import { add } from './elementwise';
import { fmtShape, normDim } from '../tensor/shape';
import { checkIndexValues, nonInteger } from './validate';
import type { DeviceName } from '../backend/device';

function checkIndex(op: string, index: Tensor, ndim?: number): void {
  if (!(index instanceof Tensor)) throw new Error(`${op}: index must be a Tensor of integers`);
  if (ndim !== undefined && index.ndim !== ndim) throw new Error(`${op}: index must have ${ndim} dims, got shape ${fmtShape(index.shape)}`);
}

/** Reads an index value as an integer clamped into [0, size): out-of-range indices were rejected on the host. */
function idxRead(kb: KernelBuilder, index: Tensor, at: string[], size: number): string {
  return kb.let(`Math.min(Math.max(Math.floor(${kb.at(ref(index), at)} + 0.5), 0.0), ${lit(size - 1)})`, 'ix');
}

function checkRange(op: string, index: Tensor, size: number): void {
  checkIndexValues(index, (v) => {
    const fraction = nonInteger(op, 'indices', v);
    if (fraction) return fraction;
    if (v < -size || v >= size) return `${op}: index ${v} is out of range for a dimension of size ${size}`;
    return v < 0 ? `${op}: negative indices are not supported (got one for size ${size})` : null;
  });
}

/**
 * The forward of indexSelect and gather: out[o] = x[o with dim d replaced by index[indexAt(o)]], one
 * kernel over `outShape`.
 */
function readAlong(x: Tensor, d: number, index: Tensor, outShape: number[], indexAt: (o: string[]) => string[], device: DeviceName): Tensor {
  const kb = new KernelBuilder(outShape);
  const o = kb.outIndex();
  const j = idxRead(kb, index, indexAt(o), x.shape[d]);
  return runKernel(
    kb,
    kb.at(
      ref(x),
      o.map((v, i) => (i === d ? j : v)),
    ),
    device,
  );
}

export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('indexSelect', index, 1);
  const d = normDim('indexSelect', dim, x.ndim);
  const device = commonDevice('indexSelect', x, index);
  checkRange('indexSelect', index, x.shape[d]);
  const shape = [...x.shape];
  shape[d] = index.shape[0];
  const y = readAlong(x, d, index, shape, (o) => [o[d]], device);
  return record(y, 'indexSelect', [x], (g) => [indexAdd(x.shape, d, index, g)], [index], { dim: d, index });
}

/** zeros(shape) with g's slices added at index positions along d (the gradient of indexSelect). */
function indexAdd(shape: number[], d: number, index: Tensor, g: Tensor): Tensor {
  if (index.shape[0] > MAX_LOOP) return chunked(index.shape[0], (s, e) => indexAdd(shape, d, slice(index, 0, s, e), slice(g, d, s, e)));
  const kb = new KernelBuilder(shape);
  const o = kb.outIndex();
  const acc = kb.let('0.0', 'acc');
  kb.loop(index.shape[0], (k) => {
    kb.emit(
      `if (Math.floor(${kb.at(ref(index), [k])} + 0.5) == ${o[d]}) { ${acc} += ${kb.at(
        ref(g),
        o.map((v, i) => (i === d ? k : v)),
      )}; }`,
    );
  });
  return runKernel(kb, acc, g.device);
}

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  checkIndex('gather', index, x.ndim);
  const d = normDim('gather', dim, x.ndim);
  const device = commonDevice('gather', x, index);
  index.shape.forEach((s, i) => {
    if (i !== d && s > x.shape[i])
      throw new Error(`gather: index shape ${fmtShape(index.shape)} exceeds input shape ${fmtShape(x.shape)} at dim ${i}`);
  });
  checkRange('gather', index, x.shape[d]);
  const y = readAlong(x, d, index, index.shape, (o) => o, device);
  return record(y, 'gather', [x], (g) => [scatterAdd(x.shape, d, index, g)], [index], { dim: d, index });
}

/** zeros(shape) with out[.., index[.., k, ..], ..] += g[.., k, ..] (the gradient of gather). */
export function scatterAdd(shape: number[], d: number, index: Tensor, g: Tensor): Tensor {
  if (index.shape[d] > MAX_LOOP) return chunked(index.shape[d], (s, e) => scatterAdd(shape, d, slice(index, d, s, e), slice(g, d, s, e)));
  const kb = new KernelBuilder(shape);
  const o = kb.outIndex();
  const acc = kb.let('0.0', 'acc');
  const inRange = index.shape.map((s, i) => (i === d ? null : `${o[i]} < ${s}`)).filter((c): c is string => c !== null);
  kb.loop(index.shape[d], (k) => {
    const at = o.map((v, i) => (i === d ? k : `Math.min(${v}, ${lit(index.shape[i] - 1)})`));
    const cond = [...inRange, `Math.floor(${kb.at(ref(index), at)} + 0.5) == ${o[d]}`].join(' && ');
    kb.emit(`if (${cond}) { ${acc} += ${kb.at(ref(g), at)}; }`);
  });
  return runKernel(kb, acc, g.device);
}

/** Sum of part(start, end) over consecutive ranges of at most MAX_LOOP (each kernel's loop stays within it). */
function chunked(n: number, part: (start: number, end: number) => Tensor): Tensor {
  let acc: Tensor | null = null;
  for (let s = 0; s < n; s += MAX_LOOP) {
    const p = part(s, Math.min(s + MAX_LOOP, n));
    if (!acc) acc = p;
    else {
      const next = add(acc, p);
      acc.dispose();
      p.dispose();
      acc = next;
    }
  }
  return acc!;
}

export function oneHot(index: Tensor, numClasses: number): Tensor {
  checkIndex('oneHot', index);
  checkRange('oneHot', index, numClasses);
  const kb = new KernelBuilder([...index.shape, numClasses]);
  const o = kb.outIndex();
  const y = runKernel(kb, `(Math.floor(${kb.at(ref(index), o.slice(0, -1))} + 0.5) == ${o[o.length - 1]} ? 1.0 : 0.0)`, index.device);
  return observeOp(y, 'oneHot', [index], { numClasses });
}
