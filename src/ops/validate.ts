/**
 * Range checks of integer-valued tensors (indices, class targets). Where the values already live on the
 * host (cpu, webasm; on gpu, a tensor uploaded from the host, which keeps its host copy) reading them is
 * free, so a bad index is a clear error naming the op; values only on the GPU (kernel results) are clamped
 * inside the kernels instead of paying a read-back.
 *
 * The read is a validation, not data-dependent control flow: it is hidden from the graph tracer, so
 * nn.compile still captures a forward that checks indices (its replays skip the check and clamp).
 */
import type { Tensor } from '../tensor/tensor';
import { backendFor } from '../backend/devices';
import { tracing } from '../backend/gpujs-backend';

/** Throws the message `problem` returns for the first offending value. */
export function checkIndexValues(t: Tensor, problem: (v: number) => string | null): void {
  const backend = backendFor(t.device);
  if (backend.resident && !(t.isContiguous && backend.hostValues(t.storage.buffer))) return;
  const tracer = tracing.tracer;
  tracing.tracer = null;
  let vals: Float32Array;
  try {
    vals = t.dataSync();
  } finally {
    tracing.tracer = tracer;
  }
  for (let k = 0; k < vals.length; k++) {
    const msg = problem(vals[k]);
    if (msg) throw new Error(msg);
  }
}

/** The message for a non-integer index (kept apart from range errors: 1.7 is not "out of range"). */
export function nonInteger(op: string, noun: string, v: number): string | null {
  // values come from float32 storage: 1.7 reads back as 1.7000000476837158
  return Number.isInteger(v) ? null : `${op}: ${noun} must be integers, got ${Number(v.toPrecision(7))}`;
}
