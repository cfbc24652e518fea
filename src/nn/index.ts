/** The `nn` namespace: Module, containers and layers. */
export { Module } from './module';
export type { RemovableHandle } from './module';
export { Sequential, ModuleList, ModuleDict } from './containers';
export { Linear, LazyLinear, Identity, Flatten } from './linear';
export { ReLU, GELU, Sigmoid, Tanh, Softmax } from './activation';
export { UninitializedParameter } from './parameter';
export * as init from './init';
export { CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss } from './loss';
