/** Batched matrix multiply with NumPy-style broadcasting of batch dims (torch.matmul semantics). */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { KernelBuilder } from '../backend/kernel-builder';
import { commonDevice, ref, runKernel } from './kernel';
import { broadcastShapes, fmtShape } from '../tensor/shape';
import { reshape, transpose, unsqueeze, squeeze } from './shape';
import { sumTo } from './reduce';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new Error('matmul: expected two tensors');
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both arguments need at least 1 dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.ndim === 1 && b.ndim === 1) return reshape(matmul(unsqueeze(a, 0), unsqueeze(b, 1)), []);
  if (a.ndim === 1) return squeeze(matmul(unsqueeze(a, 0), b), -2);
  if (b.ndim === 1) return squeeze(matmul(a, unsqueeze(b, 1)), -1);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) {
    throw new Error(`matmul: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (${M}x${K} and ${K2}x${N})`);
  }
  const device = commonDevice('matmul', a, b);
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const y = matmulKernel(a, b, batch, M, K, N, device);
  return record(y, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(matmul(g, transpose(b)), a.shape) : null,
    b.requiresGrad ? sumTo(matmul(transpose(a), g), b.shape) : null,
  ], [a, b]);
}

function matmulKernel(a: Tensor, b: Tensor, batch: number[], M: number, K: number, N: number, device: Tensor['device']): Tensor {
  const kb = new KernelBuilder([...batch, M, N]);
  const o = kb.outIndex();
  const bo = o.slice(0, batch.length);
  const [m, n] = o.slice(-2);
  const batchIdx = (t: Tensor) => bo.slice(bo.length - (t.ndim - 2));
  const acc = kb.let('0.0', 'acc');
  const ar = ref(a);
  const br = ref(b);
  kb.loop(K, (k) => kb.emit(`${acc} += ${kb.at(ar, [...batchIdx(a), m, k])} * ${kb.at(br, [...batchIdx(b), k, n])};`));
  return runKernel(kb, acc, device);
}
