/** Glue between tensors and the kernel builder: devices, broadcasting, running a built kernel. */
import { Tensor, TensorLike } from '../tensor/tensor';
import { KernelBuilder, StridedRef, isContiguous } from '../backend/kernel-builder';
import { backendFor } from '../backend/devices';
import { broadcastShapes, fmtShape, Shape } from '../tensor/shape';
import type { DeviceName } from '../backend/device';

/**
 * The most loop iterations an op lets one kernel invocation run. GL through headless-gl (ANGLE) stops a
 * fragment's loops after ~65,535 iterations in total and returns a partial result silently (a sum of
 * 200,000 ones came out as 65,535), so an op that would loop longer splits the work instead: two-pass
 * reductions, chunked scatter-adds. Same on every backend: shorter loops also sum more accurately.
 */
export const MAX_LOOP = 16384;

export function ref(t: Tensor): StridedRef {
  if (t.isDisposed) throw new Error(`a tensor of shape ${fmtShape(t.shape)} was used after dispose() (or after the tidy() that made it ended)`);
  return { buffer: t.storage.buffer, shape: t.shape, strides: t.strides, offset: t.offset };
}

export function isContiguousTensor(t: Tensor): boolean {
  return isContiguous(t);
}

/** The one device all tensor operands live on; a clear error when they differ. */
export function commonDevice(op: string, ...xs: (TensorLike | null | undefined)[]): DeviceName {
  let device: DeviceName | null = null;
  for (const x of xs) {
    if (!(x instanceof Tensor)) continue;
    if (device === null) device = x.device;
    else if (x.device !== device) {
      const shapes = xs.filter((t): t is Tensor => t instanceof Tensor).map((t) => `${fmtShape(t.shape)} on '${t.device}'`);
      throw new Error(`${op}: expected all tensors on one device, got ${shapes.join(' and ')}; move them with .to(device)`);
    }
  }
  if (device === null) throw new Error(`internal: ${op} called with no tensor operand`);
  return device;
}

/** Runs a built kernel on `device` and wraps the result as a new contiguous tensor. */
export function runKernel(kb: KernelBuilder, result: string, device: DeviceName): Tensor {
  const buf = backendFor(device).run(kb.build(result));
  return Tensor.fromBuffer(buf, kb.outShape);
}

/** out[i] = expr(inputs read with broadcasting); the workhorse of elementwise ops. */
export function mapKernel(
  op: string,
  inputs: TensorLike[],
  expr: (xs: string[], kb: KernelBuilder) => string,
  outShape?: Shape,
  device: DeviceName = commonDevice(op, ...inputs),
): Tensor {
  let shape: Shape = outShape ?? [];
  if (!outShape) for (const x of inputs) if (x instanceof Tensor) shape = broadcastShapes(op, shape, x.shape);
  const kb = new KernelBuilder(shape, undefined, { rowGrid: backendFor(device).prefersRowGrid });
  const refs = inputs.map((x) => (x instanceof Tensor ? ref(x) : x));
  const xs = refs.map((x) => (typeof x === 'number' ? kb.scalar(x) : kb.let(kb.read(x), 'x')));
  // what the graph compiler (src/graph/fuse.ts) needs to re-emit this op inside a fused kernel
  kb.meta = { kind: 'map', op, inputs: refs, expr, outShape: shape };
  kb.op = op;
  return runKernel(kb, expr(xs, kb), device);
}
