/** Conv2d and LazyConv2d (torch.nn.Conv2d / LazyConv2d) over the conv2d op. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import { empty } from './empty';
import { resetLinearLike } from './init';
import { isUninitialized, makeLazy, materializeLazy } from './parameter';
import * as ops from '../ops';
import type { Conv2dOptions, Pair } from '../ops/conv';

export interface Conv2dLayerOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
  /** only 'zeros' (PyTorch's default) is supported */
  paddingMode?: 'zeros';
}

const asPair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** 2-D convolution of x [N, C, H, W] (or [C, H, W]) with weight [O, C / groups, kH, kW], as F.conv2d. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  return ops.conv2d(x, weight, bias, opts);
}

export class Conv2d extends Module {
  weight!: Tensor;
  bias!: Tensor | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same' | 'valid';
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    public inChannels: number,
    public outChannels: number,
    kernelSize: Pair,
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    this.kernelSize = asPair(kernelSize);
    this.stride = asPair(opts.stride ?? 1);
    const pad = opts.padding ?? 0;
    this.padding = pad === 'same' || pad === 'valid' ? pad : asPair(pad);
    this.dilation = asPair(opts.dilation ?? 1);
    this.groups = opts.groups ?? 1;
    const name = new.target.name;
    if (opts.paddingMode !== undefined && opts.paddingMode !== 'zeros')
      throw new Error(`${name}: paddingMode '${opts.paddingMode}' is not supported (only 'zeros')`);
    if (!Number.isInteger(this.groups) || this.groups < 1) throw new Error(`${name}: groups must be a positive integer, got ${this.groups}`);
    if (inChannels > 0 && inChannels % this.groups !== 0)
      throw new Error(`${name}: inChannels ${inChannels} must be divisible by groups ${this.groups}`);
    if (outChannels % this.groups !== 0) throw new Error(`${name}: outChannels ${outChannels} must be divisible by groups ${this.groups}`);
    if (this.kernelSize.some((k) => !Number.isInteger(k) || k < 1))
      throw new Error(`${name}: kernelSize must be positive integers, got ${JSON.stringify(kernelSize)}`);
    if (pad === 'same' && this.stride.some((s) => s !== 1)) throw new Error(`${name}: padding='same' is not supported for strided convolutions`);
    this.registerParameter('weight', empty([outChannels, Math.max(inChannels, 0) / this.groups, ...this.kernelSize]));
    this.registerParameter('bias', opts.bias === false ? null : empty([outChannels]));
    if (inChannels > 0) this.resetParameters();
  }

  resetParameters(): void {
    resetLinearLike(this.weight, this.bias);
  }

  protected convOptions(): Conv2dOptions {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) this.fail(`expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
    if (x.ndim !== 3 && x.ndim !== 4)
      this.fail(`expected 3D (unbatched) or 4D (batched) input [N, ${this.inChannels}, H, W], got ${fmtShape(x.shape)}`);
    this.expectDim(x, -3, this.inChannels, `[N, ${this.inChannels}, H, W] (${this.inChannels} channels)`);
    try {
      return ops.conv2d(x, this.weight, this.bias, this.convOptions());
    } catch (e) {
      this.fail((e as Error).message);
    }
  }

  extraRepr(): string {
    const parts = [`${this.inChannels}, ${this.outChannels}, kernelSize=[${this.kernelSize.join(', ')}], stride=[${this.stride.join(', ')}]`];
    if (this.padding === 'same' || this.padding === 'valid') parts.push(`padding='${this.padding}'`);
    else if (this.padding.some((p) => p !== 0)) parts.push(`padding=[${this.padding.join(', ')}]`);
    if (this.dilation.some((d) => d !== 1)) parts.push(`dilation=[${this.dilation.join(', ')}]`);
    if (this.groups !== 1) parts.push(`groups=${this.groups}`);
    if (!this.bias) parts.push('bias=false');
    return parts.join(', ');
  }
}

/** A Conv2d whose inChannels is read from the first input it sees. */
export class LazyConv2d extends Conv2d {
  constructor(outChannels: number, kernelSize: Pair, opts: Conv2dLayerOptions = {}) {
    super(0, outChannels, kernelSize, opts);
    makeLazy(this);
  }

  get initialized(): boolean {
    return !isUninitialized(this.weight);
  }

  forward(x: Tensor): Tensor {
    if (!this.initialized) {
      if (!(x instanceof Tensor) || (x.ndim !== 3 && x.ndim !== 4)) {
        this.fail(`expected a 3D or 4D Tensor input to infer inChannels, got ${x instanceof Tensor ? fmtShape(x.shape) : typeof x}`);
      }
      const C = x.shape[x.ndim - 3];
      if (C % this.groups !== 0) this.fail(`input channels ${C} (input ${fmtShape(x.shape)}) must be divisible by groups ${this.groups}`);
      this.inChannels = C;
      materializeLazy(this, [this.outChannels, C / this.groups, ...this.kernelSize], x.device, LazyConv2d, Conv2d);
      this.resetParameters();
    }
    return super.forward(x);
  }
}
