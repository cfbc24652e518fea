/** `TensorDataset(...tensors)`: sample i is row i of every tensor (PyTorch's TensorDataset). */
import type { Tensor } from '../tensor/tensor';
import { tensor } from '../tensor/creation';
import { indexSelect, narrow, squeeze } from '../ops';
import { fmtShape } from '../tensor/shape';
import { Dataset, checkIndex } from './dataset';

export class TensorDataset extends Dataset<Tensor[]> {
  readonly tensors: Tensor[];

  constructor(...tensors: Tensor[]) {
    super();
    if (tensors.length === 0) throw new Error('TensorDataset: needs at least one tensor');
    const n = tensors[0].shape[0];
    if (tensors.some((t) => t.ndim === 0 || t.shape[0] !== n)) {
      throw new Error(`TensorDataset: every tensor needs the same size in dim 0, got ${tensors.map((t) => fmtShape(t.shape)).join(', ')}`);
    }
    this.tensors = tensors;
  }

  get length(): number {
    return this.tensors[0].shape[0];
  }

  getItem(index: number): Tensor[] {
    checkIndex('TensorDataset', index, this.length);
    return this.tensors.map((t) => squeeze(narrow(t, 0, index, 1), 0));
  }

  /** The rows of a batch gathered on the device in one kernel per tensor. */
  getBatch(indices: number[]): Tensor[] {
    for (const i of indices) checkIndex('TensorDataset', i, this.length);
    return this.tensors.map((t) => {
      const index = tensor(indices, { device: t.device });
      const rows = indexSelect(t, 0, index);
      index.dispose();
      return rows;
    });
  }
}
