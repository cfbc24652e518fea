/**
 * One training step of the MNIST samples (`npm run mnist` and the browser demo share it): zero the
 * gradients, forward, cross-entropy, backward, optimiser and schedule step. The batch's tensors are
 * released after the step; returns the loss value.
 */
import { F, optim, tidy, noGrad, nn, DeviceName } from '../../src';
import { Batch, Split, loader } from './batches';

export function trainStep(model: nn.Module, opt: optim.Optimizer, schedule: { step(): void }, b: Batch): number {
  const loss = tidy(() => {
    opt.zeroGrad();
    const l = F.crossEntropy(model(b.x), b.y);
    l.backward();
    opt.step();
    schedule.step();
    return l.item();
  });
  b.x.dispose();
  b.y.dispose();
  return loss;
}

/** Fraction of `split` the model classifies right, in eval mode (batches of 500); restores the mode. */
export function accuracy(model: nn.Module, split: Split, device: DeviceName, shape: number[]): number {
  const wasTraining = model.training;
  model.eval();
  let correct = 0;
  for (const b of loader(split, 500, { device, shape })) {
    correct += tidy(() => noGrad(() => model(b.x).argmax(1).eq(b.y).sum().item()));
    b.x.dispose();
    b.y.dispose();
  }
  if (wasTraining) model.train();
  return correct / split.n;
}
