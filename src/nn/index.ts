/** The `nn` namespace: Module, containers and layers. */
export { Module } from './module';
export type { RemovableHandle } from './module';
export { Sequential, ModuleList, ModuleDict } from './containers';
export { Linear, LazyLinear, Identity, Flatten } from './linear';
export { ReLU, GELU, Sigmoid, Tanh, Softmax } from './activation';
export { UninitializedParameter } from './parameter';
export * as init from './init';
export { CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss, BCEWithLogitsLoss } from './loss';
export { Dropout } from './dropout';
export { Embedding } from './sparse';
export { LayerNorm, BatchNorm1d, BatchNorm2d } from './normalization';
export { MultiheadAttention, generateSquareSubsequentMask } from './attention';
export type { AttentionForwardOptions } from './attention';
export { TransformerEncoderLayer, TransformerEncoder } from './transformer';
export type { TransformerEncoderLayerOptions, EncoderForwardOptions } from './transformer';
export { Conv2d, LazyConv2d } from './conv';
export type { Conv2dLayerOptions } from './conv';
export { MaxPool2d, AvgPool2d, AdaptiveAvgPool2d } from './pooling';
