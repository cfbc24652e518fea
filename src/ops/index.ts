/** Every op, in function form. Tensor methods delegate here. */
export * from './elementwise';
export * from './reduce';
export * from './shape';
export * from './matmul';
export * from './softmax';
export * from './indexing';
export * from './inplace';
export { isContiguousTensor } from './kernel';
export { onesLike, zerosLike } from '../tensor/creation';
export * from './conv';
export * from './pool';
