/** Every op, in function form. Tensor methods delegate here: loading this module binds them (bindTensorOps). */
import { bindTensorOps } from '../tensor/tensor';
import { onesLike } from '../tensor/creation';
import { isContiguousTensor } from './kernel';
import * as elementwise from './elementwise';
import * as reduce from './reduce';
import * as shape from './shape';
import * as matmul from './matmul';
import * as softmax from './softmax';
import * as indexing from './indexing';
import * as inplace from './inplace';

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

bindTensorOps({ ...elementwise, ...reduce, ...shape, ...matmul, ...softmax, ...indexing, ...inplace, isContiguousTensor, onesLike });
