/** The `optim` namespace: optimizers with torch.optim's update rules; callable with or without `new`. */
import { callableClass } from '../nn/callable';
import { SGD as SGDClass } from './sgd';
import { Adam as AdamClass, AdamW as AdamWClass } from './adam';
import { CosineAnnealingLR as CosineAnnealingLRClass, StepLR as StepLRClass } from './lr-scheduler';

export { Optimizer } from './optimizer';
export type { OptimizerStateDict, ParamGroup, ParamGroupSpec, ParamState, Params } from './optimizer';
export const SGD = callableClass(SGDClass);
export type SGD = SGDClass;
export type { SGDOptions } from './sgd';
export const Adam = callableClass(AdamClass);
export type Adam = AdamClass;
export const AdamW = callableClass(AdamWClass);
export type AdamW = AdamWClass;
export type { AdamOptions } from './adam';
export const lrScheduler = { CosineAnnealingLR: callableClass(CosineAnnealingLRClass), StepLR: callableClass(StepLRClass) };
