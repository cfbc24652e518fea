/** Linear, LazyLinear, Identity, Flatten. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { empty } from './empty';
import { resetLinearLike } from './init';
import { linear } from './functional';
import { UninitializedParameter, materialize } from './parameter';
import { noGrad } from '../autograd/grad-mode';
import { flatten } from '../ops';

export class Linear extends Module {
  weight!: Tensor;
  bias!: Tensor | null;

  constructor(public inFeatures: number, public outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
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
    this.weight = new UninitializedParameter();
    if (this.bias) this.bias = new UninitializedParameter();
  }

  get initialized(): boolean {
    return !(this.weight instanceof UninitializedParameter);
  }

  forward(x: Tensor): Tensor {
    if (!this.initialized) {
      if (!(x instanceof Tensor) || x.ndim < 1) this.fail(`expected a Tensor input with at least 1 dim to infer inFeatures`);
      this.inFeatures = x.shape[x.ndim - 1];
      noGrad(() => {
        materialize(this.weight, empty([this.outFeatures, this.inFeatures], x.device));
        if (this.bias) materialize(this.bias, empty([this.outFeatures], x.device));
      });
      this.resetParameters();
      // like PyTorch's cls_to_become: once materialised it is an ordinary Linear (repr, instanceof, forward)
      if (Object.getPrototypeOf(this) === LazyLinear.prototype) Object.setPrototypeOf(this, Linear.prototype);
    }
    return super.forward(x);
  }
}

export class Identity extends Module {
  forward<T>(x: T): T {
    return x;
  }
}

export class Flatten extends Module {
  constructor(public startDim = 1, public endDim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
  extraRepr(): string {
    return `startDim=${this.startDim}, endDim=${this.endDim}`;
  }
}
