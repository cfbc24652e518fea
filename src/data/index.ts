/** The `data` namespace: datasets and the DataLoader (PyTorch's torch.utils.data). */
import { callableClass } from '../nn/callable';
import { TensorDataset as TensorDatasetClass } from './tensor-dataset';
import { DataLoader as DataLoaderClass } from './dataloader';
import type { DataLoaderOptions } from './dataloader';
import type { DatasetLike } from './dataset';
import type { DefaultBatch } from './collate';

export { Dataset } from './dataset';
export type { DatasetLike } from './dataset';
export { defaultCollate } from './collate';
export type { Collate, DefaultBatch } from './collate';
export type { DataLoaderOptions } from './dataloader';

export const TensorDataset = callableClass(TensorDatasetClass);
export type TensorDataset = TensorDatasetClass;

/** Callable with or without `new`; the batch type follows the collate function (default_collate's by default). */
export const DataLoader = callableClass(DataLoaderClass) as {
  new <T, B = DefaultBatch<T>>(dataset: DatasetLike<T>, opts?: DataLoaderOptions<T, B>): DataLoaderClass<T, B>;
  <T, B = DefaultBatch<T>>(dataset: DatasetLike<T>, opts?: DataLoaderOptions<T, B>): DataLoaderClass<T, B>;
  prototype: DataLoaderClass<unknown, unknown>;
};
export type DataLoader<T = unknown, B = DefaultBatch<T>> = DataLoaderClass<T, B>;
