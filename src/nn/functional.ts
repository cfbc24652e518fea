/**
 * `F`: the functional forms of layers and losses. Layers call these; losses live here too.
 * Other files (conv, pooling, normalisation, losses) add their functions to this namespace via nn/F.ts.
 */
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import * as ops from '../ops';
import { matmulAddBias } from '../ops/matmul';

export const relu = (x: Tensor) => ops.relu(x);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') => ops.gelu(x, approximate);
export const sigmoid = (x: Tensor) => ops.sigmoid(x);
export const tanh = (x: Tensor) => ops.tanh(x);
export const softmax = (x: Tensor, dim = -1) => ops.softmax(x, dim);
export const logSoftmax = (x: Tensor, dim = -1) => ops.logSoftmax(x, dim);

/** y = x W^T + b, as torch.nn.functional.linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(weight.shape)} (expected last dim ${weight.shape[1]})`);
  }
  const wt = ops.transpose(weight, 0, 1);
  // with the bias in the product's own pass where the backend lowers matmul directly (webasm)
  return bias ? matmulAddBias(x, wt, bias) : ops.matmul(x, wt);
}
export * from './losses';
export { dropout } from './dropout';
export { embedding } from './sparse';
export { layerNorm, batchNorm } from './normalization';
export { conv2d } from './conv';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d } from './pooling';
