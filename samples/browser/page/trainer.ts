/**
 * The demo's training loop, the loop of `npm run mnist` (samples/mnist/train.ts): the same MLP and batches,
 * Adam with a cosine learning-rate decay per batch; the page's defaults are a short run (main.ts). It yields to
 * the page after every step (the data loader's async iteration), so the chart redraws and Stop is clickable.
 */
import { optim, manualSeed, nn, DeviceName } from '../../../src';
import { loader, Split } from '../../mnist/batches';
import { MLP } from '../../mnist/models';
import { trainStep, accuracy as splitAccuracy } from '../../mnist/step';

export interface TrainOptions {
  device: DeviceName;
  epochs: number;
  batchSize: number;
  lr: number;
  /** random shift augmentation in pixels (0: off) */
  shift: number;
  seed: number;
}

export interface StepInfo {
  epoch: number;
  step: number;
  stepsPerEpoch: number;
  loss: number;
  imagesPerSecond: number;
}

export interface EpochInfo {
  epoch: number;
  trainLoss: number;
  testAccuracy: number;
  seconds: number;
}

export interface TrainHooks {
  onStep?(s: StepInfo): void;
  onEpoch?(e: EpochInfo): void;
  /** polled after every step: true ends training after the current step (the model keeps what it learnt) */
  shouldStop?(): boolean;
}

export function makeModel(device: DeviceName): MLP {
  return new MLP().to(device);
}

/** Fraction of `split` the model classifies right (eval mode, batches of 500). */
export function accuracy(model: nn.Module, split: Split, device: DeviceName): number {
  return splitAccuracy(model, split, device, [784]);
}

/** Trains `model` in place; resolves with one record per finished epoch. */
export async function train(model: nn.Module, data: { train: Split; test: Split }, o: TrainOptions, hooks: TrainHooks = {}): Promise<EpochInfo[]> {
  manualSeed(o.seed);
  model.train();
  const opt = new optim.Adam(model.parameters(), { lr: o.lr });
  const batches = loader(data.train, o.batchSize, { shuffle: true, shift: o.shift, device: o.device, shape: [784] });
  const schedule = new optim.lrScheduler.CosineAnnealingLR(opt, o.epochs * batches.length);
  const history: EpochInfo[] = [];
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const t0 = performance.now();
    let seen = 0;
    let lossSum = 0;
    let step = 0;
    let stopped = false;
    for await (const b of batches) {
      const loss = trainStep(model, opt, schedule, b);
      lossSum += loss * b.size;
      seen += b.size;
      step++;
      hooks.onStep?.({ epoch, step, stepsPerEpoch: batches.length, loss, imagesPerSecond: seen / ((performance.now() - t0) / 1000) });
      if (hooks.shouldStop?.()) {
        stopped = true;
        break;
      }
    }
    const testAccuracy = accuracy(model, data.test, o.device);
    const rec = { epoch, trainLoss: lossSum / Math.max(seen, 1), testAccuracy, seconds: (performance.now() - t0) / 1000 };
    history.push(rec);
    hooks.onEpoch?.(rec);
    if (stopped) break;
  }
  model.eval();
  return history;
}
