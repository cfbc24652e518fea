/**
 * Loss functions with torch.nn.functional semantics (PyTorch 1.13), built from ops so their gradients
 * come from autograd. Class-index targets are float tensors holding integers.
 */
import { Tensor } from '../tensor/tensor';
import { broadcastShapes, fmtShape, sameShape } from '../tensor/shape';
import { warnOnce } from '../util/warn-once';
import { checkIndexValues } from '../ops/validate';
import * as ops from '../ops';

export type Reduction = 'mean' | 'sum' | 'none';

export interface NllLossOptions {
  /** a rescaling weight for each class, shape [C] */
  weight?: Tensor | null;
  /** targets equal to this are ignored (no loss, no gradient, left out of the mean); default -100 */
  ignoreIndex?: number;
  reduction?: Reduction;
}

export interface CrossEntropyOptions extends NllLossOptions {
  /** in [0, 1]: the target mixes the class (or probabilities) with the uniform distribution */
  labelSmoothing?: number;
}

export interface ReductionOptions {
  reduction?: Reduction;
}

function checkTensor(op: string, what: string, x: unknown): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor, got ${x === null ? 'null' : typeof x}`);
}

function checkReduction(op: string, r: string): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new Error(`${op}: reduction must be 'mean', 'sum' or 'none', got '${r}'`);
  return r;
}

function reduce(x: Tensor, reduction: Reduction): Tensor {
  return reduction === 'none' ? x : reduction === 'sum' ? ops.sum(x) : ops.mean(x);
}

function checkWeight(op: string, weight: Tensor | null | undefined, C: number): void {
  if (weight === null || weight === undefined) return;
  checkTensor(op, 'weight', weight);
  if (weight.ndim !== 1 || weight.shape[0] !== C) {
    throw new Error(`${op}: weight must have shape [${C}] (one entry per class), got ${fmtShape(weight.shape)}`);
  }
}

/** Targets are checked here (where that is free, see ops/validate.ts) so a bad class index names the loss, not gather. */
function checkTargets(op: string, target: Tensor, C: number, ignoreIndex: number): void {
  checkIndexValues(target, (v) => {
    if (v === ignoreIndex) return null;
    if (!Number.isInteger(v)) return `${op}: target ${v} is not a class index (targets hold integers in [0, ${C}))`;
    return v < 0 || v >= C ? `${op}: target ${v} is out of bounds for ${C} classes` : null;
  });
}

/** input [N, C, d...] (or unbatched [C]) and target [N, d...] (or []): the layout checks shared by nll and crossEntropy. */
function classLayout(op: string, input: Tensor, target: Tensor): { batched: boolean; C: number } {
  checkTensor(op, 'input', input);
  checkTensor(op, 'target', target);
  if (input.ndim < 1) throw new Error(`${op}: input must have at least 1 dim ([C] or [N, C, ...]), got a 0-d tensor`);
  if (input.ndim === 1) {
    if (target.ndim !== 0)
      throw new Error(`${op}: for an unbatched input of shape ${fmtShape(input.shape)} the target must be 0-d, got ${fmtShape(target.shape)}`);
    return { batched: false, C: input.shape[0] };
  }
  const want = [input.shape[0], ...input.shape.slice(2)];
  if (!sameShape(target.shape, want)) {
    throw new Error(
      `${op}: expected target of shape ${fmtShape(want)} for input ${fmtShape(input.shape)} (class dim 1 removed), got ${fmtShape(target.shape)}`,
    );
  }
  return { batched: true, C: input.shape[1] };
}

interface Picked {
  /** -logp[target] * weight[target], 0 where ignored; shape of target */
  loss: Tensor;
  /** weight[target] (1 without weights), 0 where ignored: the mean's denominator terms */
  w: Tensor;
  /** 1 where the target is not ignored */
  mask: Tensor;
}

/** The nll terms for batched input [N, C, d...], target [N, d...]. */
function nllTerms(logp: Tensor, target: Tensor, weight: Tensor | null | undefined, ignoreIndex: number): Picked {
  const mask = ops.ne(target, ignoreIndex);
  const safe = ops.where(mask, target, 0);
  const picked = ops.squeeze(ops.gather(logp, 1, ops.unsqueeze(safe, 1)), 1);
  const w = weight ? ops.mul(ops.reshape(ops.indexSelect(weight, 0, ops.flatten(safe)), [...target.shape]), mask) : mask;
  return { loss: ops.mul(ops.neg(picked), w), w, mask };
}

function reduceWeighted(loss: Tensor, w: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return ops.sum(loss);
  return ops.div(ops.sum(loss), ops.sum(w));
}

/** Negative log likelihood of log-probabilities `input` [N, C, d...] (or [C]) at class indices `target` [N, d...] (or []). */
export function nllLoss(input: Tensor, target: Tensor, opts: NllLossOptions = {}): Tensor {
  const op = 'nllLoss';
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const { batched, C } = classLayout(op, input, target);
  checkWeight(op, opts.weight, C);
  checkTargets(op, target, C, ignoreIndex);
  const x = batched ? input : ops.unsqueeze(input, 0);
  const t = batched ? target : ops.reshape(target, [1]);
  const { loss, w } = nllTerms(x, t, opts.weight, ignoreIndex);
  const out = reduceWeighted(loss, w, reduction);
  return !batched && reduction === 'none' ? ops.reshape(out, []) : out;
}

/**
 * Cross entropy of logits `input` [N, C, d...] (or [C]) against class indices [N, d...] (or []), or against
 * class probabilities of the input's own shape, as torch.nn.functional.cross_entropy.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const ls = opts.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls <= 1)) throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${ls}`);
  checkTensor(op, 'input', input);
  checkTensor(op, 'target', target);
  if (input.ndim >= 1 && sameShape(input.shape, target.shape)) return crossEntropyProbs(input, target, opts.weight, ls, reduction);
  const { batched, C } = classLayout(op, input, target);
  checkWeight(op, opts.weight, C);
  checkTargets(op, target, C, ignoreIndex);
  const x = batched ? input : ops.unsqueeze(input, 0);
  const t = batched ? target : ops.reshape(target, [1]);
  const logp = ops.logSoftmax(x, 1);
  const { loss, w, mask } = nllTerms(logp, t, opts.weight, ignoreIndex);
  let out = reduceWeighted(loss, w, reduction);
  if (ls > 0) {
    // the uniform part: -sum_c weight[c] * logp[c], zero where ignored; the mean divides by the same
    // denominator as the nll part (sum of weight[target] over the kept targets), as PyTorch does
    const wl = opts.weight ? ops.mul(logp, ops.reshape(opts.weight, [1, C, ...x.shape.slice(2).map(() => 1)])) : logp;
    const smooth = ops.mul(ops.neg(ops.sum(wl, 1)), mask);
    const smoothRed = reduceWeighted(smooth, w, reduction);
    out = ops.add(ops.mul(out, 1 - ls), ops.mul(smoothRed, ls / C));
  }
  return !batched && reduction === 'none' ? ops.reshape(out, []) : out;
}

function crossEntropyProbs(input: Tensor, target: Tensor, weight: Tensor | null | undefined, ls: number, reduction: Reduction): Tensor {
  const classDim = input.ndim === 1 ? 0 : 1;
  const C = input.shape[classDim];
  checkWeight('crossEntropy', weight, C);
  const logp = ops.logSoftmax(input, classDim);
  const t = ls > 0 ? ops.add(ops.mul(target, 1 - ls), ls / C) : target;
  let terms = ops.mul(logp, t);
  if (weight)
    terms = ops.mul(
      terms,
      ops.reshape(
        weight,
        input.shape.map((d, i) => (i === classDim ? C : 1)),
      ),
    );
  if (reduction === 'none') return ops.neg(ops.sum(terms, classDim));
  const total = ops.neg(ops.sum(terms));
  return reduction === 'sum' ? total : ops.div(total, input.numel() / C);
}

function checkPair(op: string, input: Tensor, target: Tensor): void {
  checkTensor(op, 'input', input);
  checkTensor(op, 'target', target);
  if (!sameShape(input.shape, target.shape)) {
    broadcastShapes(op, input.shape, target.shape); // throws, naming the loss and both shapes, when impossible
    // PyTorch broadcasts too, with this warning: it is almost always a missing squeeze/unsqueeze
    warnOnce(
      `${op}: using a target size ${fmtShape(target.shape)} that is different to the input size ${fmtShape(input.shape)}; broadcasting will likely give incorrect results. Please ensure they have the same size.`,
    );
  }
}

/** The binary cross entropies take no broadcasting: target and input must have one shape. */
function checkSameShape(op: string, input: Tensor, target: Tensor): void {
  checkTensor(op, 'input', input);
  checkTensor(op, 'target', target);
  if (!sameShape(input.shape, target.shape)) {
    throw new Error(`${op}: target size ${fmtShape(target.shape)} must be the same as input size ${fmtShape(input.shape)}`);
  }
}

/** Mean squared error, as torch.nn.functional.mse_loss. */
export function mseLoss(input: Tensor, target: Tensor, opts: ReductionOptions = {}): Tensor {
  const reduction = checkReduction('mseLoss', opts.reduction ?? 'mean');
  checkPair('mseLoss', input, target);
  return reduce(ops.square(ops.sub(input, target)), reduction);
}

/** Mean absolute error, as torch.nn.functional.l1_loss. */
export function l1Loss(input: Tensor, target: Tensor, opts: ReductionOptions = {}): Tensor {
  const reduction = checkReduction('l1Loss', opts.reduction ?? 'mean');
  checkPair('l1Loss', input, target);
  return reduce(ops.abs(ops.sub(input, target)), reduction);
}

/** Smooth L1 (quadratic below beta, linear above), as torch.nn.functional.smooth_l1_loss. */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: ReductionOptions & { beta?: number } = {}): Tensor {
  const reduction = checkReduction('smoothL1Loss', opts.reduction ?? 'mean');
  const beta = opts.beta ?? 1;
  if (beta < 0) throw new Error(`smoothL1Loss: beta must be non-negative, got ${beta}`);
  checkPair('smoothL1Loss', input, target);
  const d = ops.abs(ops.sub(input, target));
  if (beta === 0) return reduce(d, reduction);
  const loss = ops.where(ops.lt(d, beta), ops.div(ops.mul(ops.square(d), 0.5), beta), ops.sub(d, 0.5 * beta));
  return reduce(loss, reduction);
}

/** Huber loss, as torch.nn.functional.huber_loss (= delta * smoothL1 with beta = delta). */
export function huberLoss(input: Tensor, target: Tensor, opts: ReductionOptions & { delta?: number } = {}): Tensor {
  const reduction = checkReduction('huberLoss', opts.reduction ?? 'mean');
  const delta = opts.delta ?? 1;
  if (!(delta > 0)) throw new Error(`huberLoss: delta must be positive, got ${delta}`);
  checkPair('huberLoss', input, target);
  const d = ops.abs(ops.sub(input, target));
  const loss = ops.where(ops.lt(d, delta), ops.mul(ops.square(d), 0.5), ops.mul(ops.sub(d, 0.5 * delta), delta));
  return reduce(loss, reduction);
}

export interface BceOptions extends ReductionOptions {
  /** a rescaling weight broadcast against the loss */
  weight?: Tensor | null;
}

/**
 * Binary cross entropy on logits, numerically stable for any magnitude, as
 * torch.nn.functional.binary_cross_entropy_with_logits. `posWeight` (broadcast over the last dim, one
 * entry per class) weighs the positive term.
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: BceOptions & { posWeight?: Tensor | null } = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  checkSameShape(op, input, target);
  // loss = (1 - t) x + lw * (log(1 + exp(-x))), with log(1 + exp(-x)) = m + log(exp(-m) + exp(-x - m)), m = max(-x, 0)
  const m = ops.relu(ops.neg(input));
  const softplusNeg = ops.add(m, ops.log(ops.add(ops.exp(ops.neg(m)), ops.exp(ops.sub(ops.neg(input), m)))));
  const lw = opts.posWeight ? ops.add(ops.mul(ops.sub(opts.posWeight, 1), target), 1) : null;
  let loss = ops.add(ops.mul(ops.sub(1, target), input), lw ? ops.mul(lw, softplusNeg) : softplusNeg);
  if (opts.weight) loss = ops.mul(loss, opts.weight);
  return reduce(loss, reduction);
}

/** Binary cross entropy on probabilities in [0, 1], as torch.nn.functional.binary_cross_entropy (logs clamped at -100). */
export function binaryCrossEntropy(input: Tensor, target: Tensor, opts: BceOptions = {}): Tensor {
  const op = 'binaryCrossEntropy';
  const reduction = checkReduction(op, opts.reduction ?? 'mean');
  checkSameShape(op, input, target);
  const logP = ops.clamp(ops.log(input), -100);
  const log1mP = ops.clamp(ops.log(ops.sub(1, input)), -100);
  let loss = ops.neg(ops.add(ops.mul(target, logP), ops.mul(ops.sub(1, target), log1mP)));
  if (opts.weight) loss = ops.mul(loss, opts.weight);
  return reduce(loss, reduction);
}
