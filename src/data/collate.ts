/**
 * PyTorch's default_collate: a list of samples becomes one batch of the same structure — tensors are
 * stacked, numbers and equal-length numeric arrays become a tensor with the batch as dim 0, tuples and
 * objects are collated field by field.
 */
import { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { stack } from '../ops';
import type { DeviceName } from '../backend/device';

export type Collate<T, B> = (samples: T[]) => B;

/** The type default_collate makes of samples of type T. */
export type DefaultBatch<T> = T extends Tensor | number | ArrayLike<number>
  ? Tensor
  : T extends readonly unknown[]
    ? { [K in keyof T]: DefaultBatch<T[K]> }
    : T extends object
      ? { [K in keyof T]: DefaultBatch<T[K]> }
      : never;

const isNumeric = (v: unknown): v is ArrayLike<number> =>
  (ArrayBuffer.isView(v) && !(v instanceof DataView) && typeof (v as unknown as ArrayLike<unknown>)[0] !== 'bigint') ||
  (Array.isArray(v) && v.every((x) => typeof x === 'number'));

export function defaultCollate(samples: unknown[], device?: DeviceName): unknown {
  const first = samples[0];
  if (first instanceof Tensor) return stack(samples as Tensor[], 0);
  if (typeof first === 'number') return tensor(samples as number[], { device });
  if (isNumeric(first) && samples.every(isNumeric)) {
    const width = first.length;
    if (samples.some((s) => (s as ArrayLike<number>).length !== width))
      throw new Error(`defaultCollate: samples have different lengths (${first.length} and others)`);
    const out = new Float32Array(samples.length * width);
    samples.forEach((s, i) => out.set(s as ArrayLike<number>, i * width));
    return tensor(out, { shape: [samples.length, width], device });
  }
  if (Array.isArray(first)) {
    if (samples.some((s) => !Array.isArray(s) || s.length !== first.length)) throw new Error('defaultCollate: tuple samples have different lengths');
    return first.map((_, k) =>
      defaultCollate(
        samples.map((s) => (s as unknown[])[k]),
        device,
      ),
    );
  }
  if (first !== null && typeof first === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first))
      out[key] = defaultCollate(
        samples.map((s) => (s as Record<string, unknown>)[key]),
        device,
      );
    return out;
  }
  throw new Error(`defaultCollate: cannot collate samples of type ${first === null ? 'null' : typeof first}; pass a collate function`);
}

/** Disposes every tensor inside a batch (a prefetched batch the consumer never took). */
export function disposeBatch(batch: unknown): void {
  if (batch instanceof Tensor) batch.dispose();
  else if (Array.isArray(batch)) batch.forEach(disposeBatch);
  else if (batch !== null && typeof batch === 'object' && !ArrayBuffer.isView(batch)) Object.values(batch).forEach(disposeBatch);
}
