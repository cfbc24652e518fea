/** Dropout (torch.nn.Dropout / F.dropout): zeroes elements with probability p during training, scaling the rest by 1/(1-p). */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { rand } from '../tensor/creation';
import { mapKernel } from '../ops/kernel';
import * as ops from '../ops';

function checkP(op: string, p: number): void {
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new Error(`${op}: dropout probability has to be between 0 and 1, but got ${p}`);
}

/**
 * Keeps each element with probability 1 - p (the mask comes from the seeded RNG, so `manualSeed`
 * makes it reproducible) and scales kept ones by 1 / (1 - p). The identity when not training or p = 0.
 */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkP('dropout', p);
  if (!(x instanceof Tensor)) throw new Error(`dropout: expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
  if (!training || p === 0) return x;
  if (p === 1) return ops.mul(x, 0);
  const u = rand(x.shape, { device: x.device });
  const mask = mapKernel('dropout_mask', [u, p, 1 / (1 - p)], ([v, pv, scale]) => `(${v} >= ${pv} ? ${scale} : 0.0)`);
  u.dispose();
  return ops.mul(x, mask);
}

/** @tsnnLayer Dropout (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Dropout extends Module {
  p: number;
  constructor(p = 0.5, opts: { inplace?: boolean } = {}) {
    super();
    checkP('Dropout', p);
    this.p = p;
    void opts;
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
  extraRepr(): string {
    return `p=${this.p}`;
  }
}
