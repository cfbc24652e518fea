/** MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (torch.nn pooling layers) over the pooling ops. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import * as ops from '../ops';
import type { MaxPool2dOptions, AvgPool2dOptions } from '../ops/pool';
import type { Pair } from '../ops/conv';

export const maxPool2d = (x: Tensor, kernelSize: Pair, opts: MaxPool2dOptions = {}) => ops.maxPool2d(x, kernelSize, opts);
export const avgPool2d = (x: Tensor, kernelSize: Pair, opts: AvgPool2dOptions = {}) => ops.avgPool2d(x, kernelSize, opts);
export const adaptiveAvgPool2d = (x: Tensor, outputSize: number | null | readonly [number | null, number | null]) =>
  ops.adaptiveAvgPool2d(x, outputSize);

const fmt = (v: unknown) => (Array.isArray(v) ? `[${v.join(', ')}]` : String(v));

abstract class Pool2d extends Module {
  protected run(x: Tensor, f: (x: Tensor) => Tensor): Tensor {
    if (!(x instanceof Tensor)) this.fail(`expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
    if (x.ndim !== 3 && x.ndim !== 4) this.fail(`expected 3D [C, H, W] or 4D [N, C, H, W] input, got ${fmtShape(x.shape)}`);
    try {
      return f(x);
    } catch (e) {
      this.fail((e as Error).message);
    }
  }
}

export class MaxPool2d extends Pool2d {
  readonly opts: MaxPool2dOptions;
  /** `new MaxPool2d(2)`, `new MaxPool2d(3, 2)` (stride), or `new MaxPool2d(3, { stride, padding, dilation, ceilMode })` */
  constructor(
    public readonly kernelSize: Pair,
    opts: MaxPool2dOptions | number = {},
  ) {
    super();
    this.opts = typeof opts === 'number' ? { stride: opts } : { ...opts };
  }
  forward(x: Tensor): Tensor {
    return this.run(x, (t) => ops.maxPool2d(t, this.kernelSize, this.opts));
  }
  extraRepr(): string {
    const o = this.opts;
    return `kernelSize=${fmt(this.kernelSize)}, stride=${fmt(o.stride ?? this.kernelSize)}, padding=${fmt(o.padding ?? 0)}, dilation=${fmt(o.dilation ?? 1)}, ceilMode=${o.ceilMode ?? false}`;
  }
}

export class AvgPool2d extends Pool2d {
  readonly opts: AvgPool2dOptions;
  /** `new AvgPool2d(2)`, `new AvgPool2d(3, 2)` (stride), or `new AvgPool2d(3, { stride, padding, ceilMode, countIncludePad, divisorOverride })` */
  constructor(
    public readonly kernelSize: Pair,
    opts: AvgPool2dOptions | number = {},
  ) {
    super();
    this.opts = typeof opts === 'number' ? { stride: opts } : { ...opts };
  }
  forward(x: Tensor): Tensor {
    return this.run(x, (t) => ops.avgPool2d(t, this.kernelSize, this.opts));
  }
  extraRepr(): string {
    const o = this.opts;
    return `kernelSize=${fmt(this.kernelSize)}, stride=${fmt(o.stride ?? this.kernelSize)}, padding=${fmt(o.padding ?? 0)}`;
  }
}

export class AdaptiveAvgPool2d extends Pool2d {
  /** `outputSize`: a number, or [h, w] where null keeps that input size */
  constructor(public readonly outputSize: number | null | readonly [number | null, number | null]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.run(x, (t) => ops.adaptiveAvgPool2d(t, this.outputSize));
  }
  extraRepr(): string {
    return `outputSize=${fmt(this.outputSize)}`;
  }
}
