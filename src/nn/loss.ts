/** Loss modules (torch.nn.modules.loss): thin Modules over the functional losses in losses.ts. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import * as L from './losses';
import type { Reduction } from './losses';

abstract class Loss extends Module {
  reduction: Reduction;
  constructor(opts: { reduction?: Reduction } = {}) {
    super();
    this.reduction = opts.reduction ?? 'mean';
  }
  extraRepr(): string {
    return this.reduction === 'mean' ? '' : `reduction='${this.reduction}'`;
  }
}

/** Cross entropy on logits; `weight` is a buffer named `weight`, as in PyTorch's state dict. */
export class CrossEntropyLoss extends Loss {
  weight!: Tensor | null;
  ignoreIndex: number;
  labelSmoothing: number;
  constructor(opts: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction; labelSmoothing?: number } = {}) {
    super(opts);
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.crossEntropy(input, target, {
      weight: this.weight,
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }
  extraRepr(): string {
    const parts = [super.extraRepr(), this.labelSmoothing ? `labelSmoothing=${this.labelSmoothing}` : ''];
    return parts.filter(Boolean).join(', ');
  }
}

export class NLLLoss extends Loss {
  weight!: Tensor | null;
  ignoreIndex: number;
  constructor(opts: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}) {
    super(opts);
    this.registerBuffer('weight', opts.weight ?? null);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

export class MSELoss extends Loss {
  forward(input: Tensor, target: Tensor): Tensor {
    return L.mseLoss(input, target, { reduction: this.reduction });
  }
}

export class L1Loss extends Loss {
  forward(input: Tensor, target: Tensor): Tensor {
    return L.l1Loss(input, target, { reduction: this.reduction });
  }
}

export class SmoothL1Loss extends Loss {
  beta: number;
  constructor(opts: { reduction?: Reduction; beta?: number } = {}) {
    super(opts);
    this.beta = opts.beta ?? 1;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.smoothL1Loss(input, target, { reduction: this.reduction, beta: this.beta });
  }
}

export class HuberLoss extends Loss {
  delta: number;
  constructor(opts: { reduction?: Reduction; delta?: number } = {}) {
    super(opts);
    this.delta = opts.delta ?? 1;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.huberLoss(input, target, { reduction: this.reduction, delta: this.delta });
  }
}

export class BCELoss extends Loss {
  weight!: Tensor | null;
  constructor(opts: { weight?: Tensor | null; reduction?: Reduction } = {}) {
    super(opts);
    this.registerBuffer('weight', opts.weight ?? null);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.binaryCrossEntropy(input, target, { weight: this.weight, reduction: this.reduction });
  }
}

/** BCE on logits; `weight` and `pos_weight` are buffers under PyTorch's names. */
export class BCEWithLogitsLoss extends Loss {
  weight!: Tensor | null;
  constructor(opts: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}) {
    super(opts);
    this.registerBuffer('weight', opts.weight ?? null);
    this.registerBuffer('pos_weight', opts.posWeight ?? null);
  }
  get posWeight(): Tensor | null {
    return (this as any).pos_weight;
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return L.binaryCrossEntropyWithLogits(input, target, { weight: this.weight, posWeight: this.posWeight, reduction: this.reduction });
  }
}
