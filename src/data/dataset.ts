/**
 * Datasets as PyTorch's `torch.utils.data` has them: something with a length that returns the sample at an
 * index. A dataset may also return a whole batch at once (`getBatch`, PyTorch's `__getitems__`), which
 * the DataLoader uses when no custom collate is given — one gather instead of a tensor per sample.
 */
export abstract class Dataset<T> {
  abstract get length(): number;
  abstract getItem(index: number): T;
  /** Optional fast path: the collated batch of these samples (what the default collate would build). */
  getBatch?(indices: number[]): unknown;
}

/** Anything the DataLoader can index: a Dataset, or a plain array of samples. */
export type DatasetLike<T> = Dataset<T> | readonly T[];

/** Checks `index` is a valid sample index of a dataset of `length` samples. */
export function checkIndex(who: string, index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(`${who}: index ${index} is out of range for ${length} samples`);
  }
}
