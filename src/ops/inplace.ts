/**
 * In-place ops: compute out of place, then write the result into the target's storage. A whole-storage
 * target swaps buffers; a view is written by one kernel over its storage. The storage's version goes
 * up, so autograd catches saved values that were overwritten.
 */
import { Tensor, TensorLike } from '../tensor/tensor';
import { Storage } from '../tensor/storage';
import { isGradEnabled, noGrad } from '../autograd/grad-mode';
import { record, observeOp } from '../autograd/node';
import { zerosLike } from '../tensor/creation';
import { KernelBuilder, lit } from '../backend/kernel-builder';
import { broadcastShapes, fmtShape, numelOf, sameShape } from '../tensor/shape';
import { commonDevice, ref, runKernel, isContiguousTensor, mapKernel } from './kernel';
import { expand } from './shape';
import { toDevice } from './shape';

function ownsStorage(x: Tensor): boolean {
  return x.offset === 0 && isContiguousTensor(x) && numelOf(x.shape) === x.storage.size;
}

/** Writes `y` (same shape as x) into x's elements. */
function writeInto(x: Tensor, y: Tensor): void {
  if (ownsStorage(x)) {
    const src = y.isContiguous && y.offset === 0 && y.storage.size === y.numel() ? y : noGrad(() => y.clone());
    x.storage.swap(src.storage.buffer);
    if (src !== y) src.dispose();
    return;
  }
  if (x.strides.some((s, i) => s === 0 && x.shape[i] > 1)) {
    throw new Error(`in-place write into an expanded tensor of shape ${fmtShape(x.shape)}: several elements share one memory location`);
  }
  // storage index -> view index, peeling dims from the largest stride down
  const order = x.shape.map((_, d) => d).sort((a, b) => x.strides[b] - x.strides[a]);
  const kb = new KernelBuilder([x.storage.size]);
  const rem = kb.let(`i - ${x.offset}`, 'rem');
  const ok = kb.let(`${rem} >= 0 ? 1.0 : 0.0`, 'ok');
  const idx: string[] = new Array(x.ndim);
  for (const d of order) {
    // a size-1 dim has index 0 whatever its stride (a slice or unsqueeze may leave any stride there)
    if (x.shape[d] === 1) {
      idx[d] = '0';
      continue;
    }
    const s = Math.max(x.strides[d], 1);
    const v = kb.let(`Math.floor(${rem} / ${s})`, 'ix');
    kb.emit(`if (${v} < 0 || ${v} >= ${x.shape[d]}) { ${ok} = 0.0; }`);
    kb.emit(`${rem} = ${rem} - ${v} * ${s};`);
    // float literals: GLSL has no max(float, int), and gpu.js types a bare 0 in an index as int
    idx[d] = `Math.min(Math.max(${v}, 0.0), ${lit(Math.max(x.shape[d] - 1, 0))})`;
  }
  kb.emit(`if (${rem} != 0) { ${ok} = 0.0; }`);
  const whole = { buffer: x.storage.buffer, shape: [x.storage.size], strides: [1], offset: 0 };
  const out = runKernel(kb, `(${ok} > 0.0 ? ${kb.at(ref(y), idx)} : ${kb.at(whole, ['i'])})`, x.device);
  x.storage.swap(out.storage.buffer);
  out.dispose();
}

function checkTarget(x: Tensor, name: string): void {
  if (isGradEnabled() && x.requiresGrad && x.isLeaf) {
    throw new Error(
      `${name}: a leaf tensor that requires grad (shape ${fmtShape(x.shape)}) is used in an in-place operation; wrap the update in noGrad()`,
    );
  }
}

/** x's current value and graph position, as a tensor of its own (x's storage is about to be overwritten). */
function snapshotOf(x: Tensor): Tensor {
  const snapshot = new Tensor(new Storage(x.storage.buffer), x.shape, x.strides, x.offset);
  snapshot.gradFn = x.gradFn;
  snapshot.requiresGrad = x.requiresGrad;
  return snapshot;
}

function checkTracked(x: Tensor, name: string): void {
  if (!ownsStorage(x))
    throw new Error(`${name}: in-place ops on views are not differentiable here (shape ${fmtShape(x.shape)}); use the out-of-place form`);
}

/** x = fn(x, o) in place; with grad tracking, x takes the result's place in the graph. */
export function inplace<T extends Tensor>(x: T, name: string, fn: (a: Tensor, b: TensorLike) => Tensor, o: TensorLike): T {
  checkTarget(x, name);
  if (o instanceof Tensor) {
    commonDevice(name, x, o);
    if (!sameShape(broadcastShapes(name, x.shape, o.shape), x.shape)) {
      throw new Error(`${name}: operand of shape ${fmtShape(o.shape)} does not broadcast to the in-place target's shape ${fmtShape(x.shape)}`);
    }
  }
  const tracking = isGradEnabled() && (x.requiresGrad || (o instanceof Tensor && o.requiresGrad));
  if (tracking) checkTracked(x, name);
  // the snapshot keeps x's old value and graph position for the backward pass
  const snapshot = tracking ? snapshotOf(x) : x;
  // x.op_(x): both operands are the old value (the rule must not read x after the write)
  const y = fn(snapshot, o === x ? snapshot : o);
  if (!sameShape(y.shape, x.shape)) {
    throw new Error(`${name}: result of shape ${fmtShape(y.shape)} does not fit the in-place target of shape ${fmtShape(x.shape)}`);
  }
  writeInto(x, y);
  // x now holds y's value: the op observer (ONNX export) follows it
  observeOp(x, 'inplace', [y]);
  if (tracking) {
    x.gradFn = y.gradFn;
    x.requiresGrad = true;
  } else {
    y.dispose();
  }
  return x;
}

/** Fills x with v. In a graph the old value no longer reaches the result: its gradient is zero. */
export function fill_<T extends Tensor>(x: T, v: number): T {
  checkTarget(x, 'fill_');
  const tracking = isGradEnabled() && x.requiresGrad;
  if (tracking) checkTracked(x, 'fill_');
  const snapshot = tracking ? snapshotOf(x) : null;
  noGrad(() => {
    const y = mapKernel('fill', [v], ([s]) => s, x.shape, x.device);
    writeInto(x, y);
    y.dispose();
  });
  if (snapshot) record(x, 'fill_', [snapshot], (g) => [zerosLike(g)]);
  return x;
}

/**
 * Copies src (broadcast, from any device) into x. Differentiable as in PyTorch: the gradient goes to
 * src (summed over broadcast dims, moved back to its device); x's old value gets zero.
 */
export function copy_<T extends Tensor>(x: T, src: Tensor): T {
  checkTarget(x, 'copy_');
  if (!(src instanceof Tensor)) throw new Error('copy_: source must be a Tensor');
  const tracking = isGradEnabled() && (x.requiresGrad || src.requiresGrad);
  if (tracking) checkTracked(x, 'copy_');
  const snapshot = tracking ? snapshotOf(x) : null;
  // the broadcast/moved source keeps its own graph (expand sums, to() moves back) when tracking
  const moved = toDevice(src, x.device);
  const y = expand(moved, x.shape);
  writeInto(x, y);
  if (snapshot) record(x, 'copy_', [snapshot, y], (g) => [zerosLike(g), g]);
  else {
    if (y !== src) y.dispose();
    if (moved !== src && moved !== y) moved.dispose();
  }
  return x;
}
