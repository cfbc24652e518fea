/** Linear, LazyLinear, Identity, Flatten. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { empty } from './empty';
import { resetLinearLike } from './init';
import { linear } from './functional';
import { isUninitialized, makeLazy, materializeLazy } from './parameter';
import { flatten } from '../ops';
import { describeValue } from '../util/describe';

/** @tsnnLayer Linear (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Linear extends Module {
  weight!: Tensor;
  bias!: Tensor | null;

  constructor(
    public inFeatures: number,
    public outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    for (const [arg, v] of [
      ['inFeatures', inFeatures],
      ['outFeatures', outFeatures],
    ] as const) {
      if (!Number.isInteger(v) || v < 0) throw new TypeError(`${new.target.name}: ${arg} must be a non-negative integer, got ${describeValue(v)}`);
    }
    this.registerParameter('weight', empty([outFeatures, inFeatures]));
    this.registerParameter('bias', opts.bias === false ? null : empty([outFeatures]));
    if (inFeatures > 0) this.resetParameters();
  }

  resetParameters(): void {
    resetLinearLike(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    this.expectDim(x, -1, this.inFeatures, `[*, ${this.inFeatures}]`);
    return linear(x, this.weight, this.bias);
  }

  extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** A Linear whose inFeatures is read from the first input it sees. */
export class LazyLinear extends Linear {
  constructor(outFeatures: number, opts: { bias?: boolean } = {}) {
    super(0, outFeatures, opts);
    makeLazy(this);
  }

  get initialized(): boolean {
    return !isUninitialized(this.weight);
  }

  forward(x: Tensor): Tensor {
    if (!this.initialized) {
      if (!(x instanceof Tensor) || x.ndim < 1) this.fail(`expected a Tensor input with at least 1 dim to infer inFeatures`);
      this.inFeatures = x.shape[x.ndim - 1];
      materializeLazy(this, [this.outFeatures, this.inFeatures], x.device, LazyLinear, Linear);
      this.resetParameters();
    }
    return super.forward(x);
  }
}

/** @tsnnLayer Identity (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Identity extends Module {
  forward<T>(x: T): T {
    return x;
  }
}

export class Flatten extends Module {
  constructor(
    public startDim = 1,
    public endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
  extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}
