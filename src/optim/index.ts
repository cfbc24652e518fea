/** The `optim` namespace: optimizers with torch.optim's update rules. */
export { Optimizer } from './optimizer';
export type { OptimizerStateDict, ParamGroup, ParamGroupSpec, ParamState, Params } from './optimizer';
export { SGD } from './sgd';
export type { SGDOptions } from './sgd';
export { Adam, AdamW } from './adam';
export type { AdamOptions } from './adam';
