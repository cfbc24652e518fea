/** tsnn: PyTorch's nn.Module system in TypeScript. Everything users need is exported from here. */
export { Tensor } from './tensor/tensor';
export type { TensorLike, NestedArray } from './tensor/tensor';
export { tensor, zeros, ones, full, rand, randn, arange, eye, zerosLike, onesLike, fullLike, uniform } from './tensor/creation';
export type { TensorOptions } from './tensor/creation';
export { manualSeed, randperm, random, Generator } from './tensor/random';
export { tidy, keep } from './tensor/scope';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd/grad-mode';
export { getDefaultDevice, setDefaultDevice, deviceReport, backendFor, setKernelCacheSize } from './backend/devices';
export type { DeviceName, DeviceSpec } from './backend/device';
export { setBackendOptions, getBackendOptions } from './platform/options';
export type { BackendOptions } from './platform/options';
export * as ops from './ops/public';
export {
  add,
  sub,
  mul,
  div,
  neg,
  pow,
  exp,
  log,
  sqrt,
  abs,
  relu,
  sigmoid,
  tanh,
  gelu,
  matmul,
  sum,
  mean,
  max,
  min,
  argmax,
  softmax,
  logSoftmax,
  reshape,
  view,
  flatten,
  permute,
  transpose,
  unsqueeze,
  squeeze,
  cat,
  stack,
  slice,
  narrow,
  indexSelect,
  gather,
  where,
  eq,
  gt,
  lt,
  ge,
  le,
  ne,
  clamp,
  maximum,
  minimum,
  expand,
  oneHot,
  variance,
} from './ops/public';
export * as nn from './nn';
export * as F from './nn/functional';
export { child, param, buffer } from './nn/decorators';
export { Module } from './nn/module';
export * as optim from './optim';
export * as data from './data';
export {
  saveFile,
  loadFile,
  saveFileAsync,
  loadFileAsync,
  loadFileWithMetadata,
  readHeader,
  serialize,
  deserialize,
  loadUrl,
  SafetensorsError,
} from './io';
export * as onnx from './onnx';
