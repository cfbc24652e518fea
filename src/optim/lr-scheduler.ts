/**
 * Learning-rate schedules (torch.optim.lr_scheduler): call `step()` once per epoch, or once per batch with
 * tMax counted in batches. Each sets `lr` on every parameter group from the group's initial lr.
 */
import type { Optimizer } from './optimizer';

abstract class LRScheduler {
  lastEpoch = 0;
  readonly baseLrs: number[];

  constructor(readonly optimizer: Optimizer<any>) {
    this.baseLrs = optimizer.paramGroups.map((g: any) => {
      if (typeof g.lr !== 'number') throw new Error(`${this.constructor.name}: parameter groups need a numeric lr`);
      return g.lr;
    });
  }

  protected abstract lrAt(base: number, epoch: number): number;

  step(): void {
    this.lastEpoch++;
    this.optimizer.paramGroups.forEach((g: any, i) => (g.lr = this.lrAt(this.baseLrs[i], this.lastEpoch)));
  }

  getLastLr(): number[] {
    return this.optimizer.paramGroups.map((g: any) => g.lr);
  }
}

/** lr = etaMin + (base - etaMin) (1 + cos(pi t / tMax)) / 2, the closed form of CosineAnnealingLR. */
export class CosineAnnealingLR extends LRScheduler {
  constructor(
    optimizer: Optimizer<any>,
    readonly tMax: number,
    readonly etaMin = 0,
  ) {
    super(optimizer);
    if (!(tMax > 0)) throw new Error(`CosineAnnealingLR: tMax must be positive, got ${tMax}`);
  }
  protected lrAt(base: number, t: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * Math.min(t, this.tMax)) / this.tMax))) / 2;
  }
}

/** lr = base * gamma^floor(t / stepSize). */
export class StepLR extends LRScheduler {
  constructor(
    optimizer: Optimizer<any>,
    readonly stepSize: number,
    readonly gamma = 0.1,
  ) {
    super(optimizer);
  }
  protected lrAt(base: number, t: number): number {
    return base * Math.pow(this.gamma, Math.floor(t / this.stepSize));
  }
}
