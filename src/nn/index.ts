/** The `nn` namespace: Module, containers and layers. Each class also works called without `new` (see callable.ts). */
import { callableClass } from './callable';
import type { Module } from './module';
import { Sequential as SequentialClass, ModuleList as ModuleListClass, ModuleDict as ModuleDictClass } from './containers';
import { Linear as LinearClass, LazyLinear as LazyLinearClass, Identity as IdentityClass, Flatten as FlattenClass } from './linear';
import { ReLU as ReLUClass, GELU as GELUClass, Sigmoid as SigmoidClass, Tanh as TanhClass, Softmax as SoftmaxClass } from './activation';
import {
  CrossEntropyLoss as CrossEntropyLossClass,
  NLLLoss as NLLLossClass,
  MSELoss as MSELossClass,
  L1Loss as L1LossClass,
  SmoothL1Loss as SmoothL1LossClass,
  HuberLoss as HuberLossClass,
  BCELoss as BCELossClass,
  BCEWithLogitsLoss as BCEWithLogitsLossClass,
} from './loss';
import { Dropout as DropoutClass } from './dropout';
import { Embedding as EmbeddingClass } from './sparse';
import { LayerNorm as LayerNormClass, BatchNorm1d as BatchNorm1dClass, BatchNorm2d as BatchNorm2dClass } from './normalization';
import { MultiheadAttention as MultiheadAttentionClass } from './attention';
import { TransformerEncoderLayer as TransformerEncoderLayerClass, TransformerEncoder as TransformerEncoderClass } from './transformer';
import { Conv2d as Conv2dClass, LazyConv2d as LazyConv2dClass } from './conv';
import { MaxPool2d as MaxPool2dClass, AvgPool2d as AvgPool2dClass, AdaptiveAvgPool2d as AdaptiveAvgPool2dClass } from './pooling';

export { Module } from './module';
export type { RemovableHandle } from './module';
export const Sequential = callableClass(SequentialClass);
export type Sequential = SequentialClass;
// Called without `new`, ModuleList / ModuleDict keep their element type (CallableClass alone cannot:
// ConstructorParameters erases the class's type parameter, so calls of the elements would be `any`).
export const ModuleList = callableClass(ModuleListClass) as (<M extends Module = Module>(modules?: Iterable<M>) => ModuleListClass<M>) &
  typeof ModuleListClass;
export type ModuleList<M extends Module = Module> = ModuleListClass<M>;
export const ModuleDict = callableClass(ModuleDictClass) as (<M extends Module = Module>(modules?: Record<string, M>) => ModuleDictClass<M>) &
  typeof ModuleDictClass;
export type ModuleDict<M extends Module = Module> = ModuleDictClass<M>;
export const Linear = callableClass(LinearClass);
export type Linear = LinearClass;
export const LazyLinear = callableClass(LazyLinearClass);
export type LazyLinear = LazyLinearClass;
export const Identity = callableClass(IdentityClass);
export type Identity = IdentityClass;
export const Flatten = callableClass(FlattenClass);
export type Flatten = FlattenClass;
export const ReLU = callableClass(ReLUClass);
export type ReLU = ReLUClass;
export const GELU = callableClass(GELUClass);
export type GELU = GELUClass;
export const Sigmoid = callableClass(SigmoidClass);
export type Sigmoid = SigmoidClass;
export const Tanh = callableClass(TanhClass);
export type Tanh = TanhClass;
export const Softmax = callableClass(SoftmaxClass);
export type Softmax = SoftmaxClass;
export const CrossEntropyLoss = callableClass(CrossEntropyLossClass);
export type CrossEntropyLoss = CrossEntropyLossClass;
export const NLLLoss = callableClass(NLLLossClass);
export type NLLLoss = NLLLossClass;
export const MSELoss = callableClass(MSELossClass);
export type MSELoss = MSELossClass;
export const L1Loss = callableClass(L1LossClass);
export type L1Loss = L1LossClass;
export const SmoothL1Loss = callableClass(SmoothL1LossClass);
export type SmoothL1Loss = SmoothL1LossClass;
export const HuberLoss = callableClass(HuberLossClass);
export type HuberLoss = HuberLossClass;
export const BCELoss = callableClass(BCELossClass);
export type BCELoss = BCELossClass;
export const BCEWithLogitsLoss = callableClass(BCEWithLogitsLossClass);
export type BCEWithLogitsLoss = BCEWithLogitsLossClass;
export const Dropout = callableClass(DropoutClass);
export type Dropout = DropoutClass;
export const Embedding = callableClass(EmbeddingClass);
export type Embedding = EmbeddingClass;
export const LayerNorm = callableClass(LayerNormClass);
export type LayerNorm = LayerNormClass;
export const BatchNorm1d = callableClass(BatchNorm1dClass);
export type BatchNorm1d = BatchNorm1dClass;
export const BatchNorm2d = callableClass(BatchNorm2dClass);
export type BatchNorm2d = BatchNorm2dClass;
export const MultiheadAttention = callableClass(MultiheadAttentionClass);
export type MultiheadAttention = MultiheadAttentionClass;
export const TransformerEncoderLayer = callableClass(TransformerEncoderLayerClass);
export type TransformerEncoderLayer = TransformerEncoderLayerClass;
export const TransformerEncoder = callableClass(TransformerEncoderClass);
export type TransformerEncoder = TransformerEncoderClass;
export const Conv2d = callableClass(Conv2dClass);
export type Conv2d = Conv2dClass;
export const LazyConv2d = callableClass(LazyConv2dClass);
export type LazyConv2d = LazyConv2dClass;
export const MaxPool2d = callableClass(MaxPool2dClass);
export type MaxPool2d = MaxPool2dClass;
export const AvgPool2d = callableClass(AvgPool2dClass);
export type AvgPool2d = AvgPool2dClass;
export const AdaptiveAvgPool2d = callableClass(AdaptiveAvgPool2dClass);
export type AdaptiveAvgPool2d = AdaptiveAvgPool2dClass;
export { UninitializedParameter } from './parameter';
export * as init from './init';
export { generateSquareSubsequentMask } from './attention';
export type { AttentionForwardOptions } from './attention';
export type { TransformerEncoderLayerOptions, EncoderForwardOptions } from './transformer';
export type { Conv2dLayerOptions } from './conv';
export { compile, type CompiledModule, type CompileOptions } from '../graph/compile';
