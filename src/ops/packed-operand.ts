/**
 * Row-major copies of strided matmul operands, cached per storage: "weight packing".
 *
 * The tiled matmul kernels read a row of B with one vector load when B is contiguous along N; a
 * transposed view (nn.Linear's x @ W^T reads W [out, in] as [in, out]) would be gathered lane by lane
 * instead, ~2x slower. XNNPACK packs weights once per operator for the same reason. Here a copy is made
 * when B is not row-major, and kept while B's storage still holds the same buffer (buffers are
 * immutable; every in-place write swaps in a new one), so inference reuses it and a training step
 * re-packs each weight once after the optimizer changed it.
 *
 * While a graph is being captured (nn.compile) no cache is read or written: the copy is recorded as a
 * graph step, which the compiled replay reuses while the weight's buffer is unchanged.
 */
import type { Tensor } from '../tensor/tensor';
import type { Storage } from '../tensor/storage';
import type { DeviceBuffer } from '../backend/gpujs-backend';
import { tracing } from '../backend/gpujs-backend';
import { isGradEnabled, noGrad } from '../autograd/grad-mode';
import { keep } from '../tensor/scope';
import { clone } from './shape';

interface Packed {
  buffer: DeviceBuffer;
  view: string;
  copy: Tensor;
}

const cache = new WeakMap<Storage, Packed>();

/** Is the last dim of `t` unit-stride (each row of the matrix read as a contiguous run)? */
function rowMajorRows(t: Tensor): boolean {
  return t.ndim < 2 || t.strides[t.ndim - 1] === 1 || t.shape[t.ndim - 1] === 1;
}

/**
 * `b` itself when its rows are contiguous; otherwise a contiguous copy, cached unless a graph is being
 * captured. `cacheOnly`: copy only when the copy can be cached (small products, where packing on every
 * call would cost more than the gathers it saves).
 */
export function packedOperand(b: Tensor, opts: { cacheOnly?: boolean } = {}): Tensor {
  if (rowMajorRows(b)) return b;
  // captured: the copy becomes a graph step, which compiled replays reuse until the weight changes
  // (src/graph/compile.ts); small products pack there only for inference graphs
  if (tracing.tracer) return opts.cacheOnly && isGradEnabled() ? b : noGrad(() => clone(b));
  const view = `${b.offset}|${b.shape.join(',')}|${b.strides.join(',')}`;
  const hit = cache.get(b.storage);
  if (hit && hit.buffer === b.storage.buffer && hit.view === view && !hit.copy.isDisposed) return hit.copy;
  const copy = keep(noGrad(() => clone(b)));
  if (hit && !hit.copy.isDisposed) hit.copy.dispose();
  cache.set(b.storage, { buffer: b.storage.buffer, view, copy });
  return copy;
}
