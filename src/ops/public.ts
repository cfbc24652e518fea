/**
 * The ops users may call: the package root's `ops` namespace re-exports exactly this module.
 * `./index` is the internal barrel (it also carries op-building helpers such as `unary`, `sumTo` and the
 * kernel plumbing), so a new op becomes public only when it is listed here (test/package-exports.test.ts
 * fails for an op that is in neither list).
 */
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  eq,
  ne,
  gt,
  ge,
  lt,
  le,
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  abs,
  sign,
  square,
  sin,
  cos,
  relu,
  sigmoid,
  tanh,
  gelu,
  clamp,
  where,
} from './elementwise';
export { sum, mean, variance, max, min, argmax, argmin } from './reduce';
export { contiguous, clone, reshape, view, flatten, permute, transpose, unsqueeze, squeeze, expand, slice, narrow, cat, stack } from './shape';
export { matmul } from './matmul';
export { softmax, logSoftmax, logsumexp } from './softmax';
export { indexSelect, gather, scatterAdd, oneHot } from './indexing';
export { fill_, copy_ } from './inplace';
export { onesLike, zerosLike } from '../tensor/creation';
export { conv2d } from './conv';
export type { Conv2dOptions, Pair } from './conv';
export { maxPool2d, avgPool2d, adaptiveAvgPool2d } from './pool';
export type { MaxPool2dOptions, AvgPool2dOptions } from './pool';
