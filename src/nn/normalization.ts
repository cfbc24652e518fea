/** LayerNorm and BatchNorm1d/2d (torch.nn.LayerNorm, BatchNorm*d) with their functional forms. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { fmtShape, sameShape } from '../tensor/shape';
import { ones, zeros, full } from '../tensor/creation';
import { noGrad } from '../autograd/grad-mode';
import { ones_, zeros_ } from './init';
import { LOAD_DEFAULTS } from './state-dict';
import * as ops from '../ops';

/**
 * Normalises over the trailing dims `normalizedShape` (biased variance), then scales by `weight` and shifts by
 * `bias` (both of shape normalizedShape) when given, as F.layer_norm.
 */
export function layerNorm(x: Tensor, normalizedShape: number | number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  if (!(x instanceof Tensor)) throw new Error(`layerNorm: expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
  const k = shape.length;
  if (x.ndim < k || !sameShape(x.shape.slice(x.ndim - k), shape)) {
    throw new Error(`layerNorm: expected input with shape [*, ${shape.join(', ')}], got ${fmtShape(x.shape)}`);
  }
  for (const [what, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && !sameShape(t.shape, shape)) throw new Error(`layerNorm: ${what} must have shape ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
  }
  const dims = shape.map((_, i) => x.ndim - k + i);
  const mu = ops.mean(x, dims, true);
  const centered = ops.sub(x, mu);
  const v = ops.mean(ops.square(centered), dims, true);
  let y = ops.mul(centered, ops.rsqrt(ops.add(v, eps)));
  if (weight) y = ops.mul(y, weight);
  if (bias) y = ops.add(y, bias);
  return y;
}

/** @tsnnLayer LayerNorm (the tsnn transformer checks feature sizes in nn.Sequential) */
export class LayerNorm extends Module {
  weight!: Tensor | null;
  bias!: Tensor | null;
  normalizedShape: number[];
  eps: number;
  elementwiseAffine: boolean;

  constructor(normalizedShape: number | number[], opts: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (!this.normalizedShape.length || this.normalizedShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`LayerNorm: normalizedShape must be positive integers, got ${JSON.stringify(normalizedShape)}`);
    }
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    this.registerParameter('weight', this.elementwiseAffine ? ones(this.normalizedShape) : null);
    this.registerParameter('bias', this.elementwiseAffine && opts.bias !== false ? zeros(this.normalizedShape) : null);
  }

  resetParameters(): void {
    if (this.weight) ones_(this.weight);
    if (this.bias) zeros_(this.bias);
  }

  forward(x: Tensor): Tensor {
    const k = this.normalizedShape.length;
    if (!(x instanceof Tensor)) this.fail(`expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
    if (x.ndim < k || !sameShape(x.shape.slice(x.ndim - k), this.normalizedShape)) {
      this.fail(`expected input [*, ${this.normalizedShape.join(', ')}], got ${fmtShape(x.shape)}`);
    }
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  extraRepr(): string {
    return `[${this.normalizedShape.join(', ')}], eps=${this.eps}, elementwiseAffine=${this.elementwiseAffine}`;
  }
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** use (and update) the batch statistics rather than the running ones */
  training?: boolean;
  /** running = (1 - momentum) * running + momentum * batch statistic */
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation over dim 1 of [N, C, *] as F.batch_norm: in training (or without running stats) it
 * normalises with the batch mean and biased variance, and updates `runningMean` / `runningVar` in place
 * with the batch mean and the unbiased variance; otherwise it uses the running statistics.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  if (!(x instanceof Tensor) || x.ndim < 2)
    throw new Error(`batchNorm: expected input [N, C, *], got ${x instanceof Tensor ? fmtShape(x.shape) : typeof x}`);
  const C = x.shape[1];
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const training = opts.training ?? false;
  for (const [what, t] of [
    ['runningMean', runningMean],
    ['runningVar', runningVar],
    ['weight', opts.weight],
    ['bias', opts.bias],
  ] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== C))
      throw new Error(`batchNorm: ${what} must have shape [${C}] for input ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}`);
  }
  // per-channel tensors broadcast as [1, C, 1, ...]
  const bshape = x.shape.map((d, i) => (i === 1 ? C : 1));
  const chan = (t: Tensor) => ops.reshape(t, bshape);
  let y: Tensor;
  if (training || !runningMean || !runningVar) {
    const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
    const n = x.numel() / C;
    if (training && n <= 1) throw new Error(`batchNorm: expected more than 1 value per channel when training, got input size ${fmtShape(x.shape)}`);
    const mu = ops.mean(x, dims, true);
    const centered = ops.sub(x, mu);
    const v = ops.mean(ops.square(centered), dims, true);
    y = ops.mul(centered, ops.rsqrt(ops.add(v, eps)));
    if (training && runningMean && runningVar) {
      noGrad(() => {
        const m = ops.reshape(mu, [C]);
        const vu = ops.mul(ops.reshape(v, [C]), n / Math.max(n - 1, 1));
        runningMean.copy_(ops.add(ops.mul(runningMean, 1 - momentum), ops.mul(m, momentum)));
        runningVar.copy_(ops.add(ops.mul(runningVar, 1 - momentum), ops.mul(vu, momentum)));
      });
    }
  } else {
    y = ops.mul(ops.sub(x, chan(runningMean)), chan(ops.rsqrt(ops.add(runningVar, eps))));
  }
  if (opts.weight) y = ops.mul(y, chan(opts.weight));
  if (opts.bias) y = ops.add(y, chan(opts.bias));
  return y;
}

/** The shared body of BatchNorm1d/2d: parameters and buffers under PyTorch's state-dict names. */
abstract class BatchNormBase extends Module {
  weight!: Tensor | null;
  bias!: Tensor | null;
  eps: number;
  /** null: cumulative moving average (factor 1 / num_batches_tracked) */
  momentum: number | null;
  affine: boolean;
  trackRunningStats: boolean;

  constructor(
    public numFeatures: number,
    opts: { eps?: number; momentum?: number | null; affine?: boolean; trackRunningStats?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1)
      throw new Error(`${new.target.name}: numFeatures must be a positive integer, got ${numFeatures}`);
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    this.registerParameter('weight', this.affine ? ones([numFeatures]) : null);
    this.registerParameter('bias', this.affine ? zeros([numFeatures]) : null);
    this.registerBuffer('running_mean', this.trackRunningStats ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', this.trackRunningStats ? ones([numFeatures]) : null);
    this.registerBuffer('num_batches_tracked', this.trackRunningStats ? full([], 0) : null);
  }

  get runningMean(): Tensor | null {
    return (this as any).running_mean;
  }
  get runningVar(): Tensor | null {
    return (this as any).running_var;
  }
  get numBatchesTracked(): Tensor | null {
    return (this as any).num_batches_tracked;
  }

  /**
   * A state dict without `num_batches_tracked` (written before the counter existed, or converted from
   * elsewhere) loads as PyTorch's _NormBase._load_from_state_dict loads it: with the counter reset to 0.
   */
  [LOAD_DEFAULTS](): Map<string, () => Tensor> {
    return new Map(this.trackRunningStats ? [['num_batches_tracked', () => full([], 0)]] : []);
  }

  resetRunningStats(): void {
    noGrad(() => {
      this.runningMean?.zero_();
      this.runningVar?.fill_(1);
      this.numBatchesTracked?.zero_();
    });
  }

  resetParameters(): void {
    this.resetRunningStats();
    if (this.weight) ones_(this.weight);
    if (this.bias) zeros_(this.bias);
  }

  protected abstract checkInput(x: Tensor): void;

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) this.fail(`expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
    this.checkInput(x);
    this.expectDim(x, 1, this.numFeatures, `[N, ${this.numFeatures}, *] (${this.numFeatures} features in dim 1)`);
    if (this.training && x.numel() / x.shape[1] <= 1) {
      this.fail(`expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
    }
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.numBatchesTracked) {
      const nbt = this.numBatchesTracked;
      noGrad(() => nbt.add_(1));
      if (this.momentum === null) factor = 1 / nbt.item();
    }
    const useBatch = this.training || !this.trackRunningStats;
    return batchNorm(x, useBatch && !this.training ? null : this.runningMean, useBatch && !this.training ? null : this.runningVar, {
      weight: this.weight,
      bias: this.bias,
      training: useBatch,
      momentum: factor,
      eps: this.eps,
    });
  }

  extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine}, trackRunningStats=${this.trackRunningStats}`;
  }
}

/**
 * Batch norm over [N, C] or [N, C, L].
 * @tsnnLayer BatchNorm1d (the tsnn transformer checks feature sizes in nn.Sequential)
 */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) this.fail(`expected 2D or 3D input ([N, C] or [N, C, L]), got ${x.ndim}D input ${fmtShape(x.shape)}`);
  }
}

/** Batch norm over [N, C, H, W]. */
export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) this.fail(`expected 4D input [N, C, H, W], got ${x.ndim}D input ${fmtShape(x.shape)}`);
  }
}
