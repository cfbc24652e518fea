import { expect } from 'chai';
import { optim, zeros } from '../../src';
import { fixture, expectClose } from '../helpers';

describe('optim.lrScheduler (vs torch.optim.lr_scheduler)', () => {
  const golden = fixture<{ cosine: number[]; step: number[] }>('lr_scheduler.json');
  const trace = (make: (o: optim.SGD) => { step(): void }) => {
    const opt = new optim.SGD([zeros([1], { requiresGrad: true })], { lr: 0.1 });
    const s = make(opt);
    return golden.cosine.map(() => (s.step(), (opt.paramGroups[0] as any).lr as number));
  };

  it('CosineAnnealingLR follows PyTorch over a whole period', () => {
    expectClose(
      trace((o) => new optim.lrScheduler.CosineAnnealingLR(o, 10, 0.001)),
      golden.cosine,
      1e-9,
      1e-9,
    );
  });

  it('StepLR follows PyTorch', () => {
    expectClose(
      trace((o) => optim.lrScheduler.StepLR(o, 3, 0.5)),
      golden.step,
      1e-9,
      1e-9,
    );
  });

  it('rejects a non-positive period', () => {
    const opt = new optim.SGD([zeros([1], { requiresGrad: true })], { lr: 0.1 });
    expect(() => new optim.lrScheduler.CosineAnnealingLR(opt, 0)).to.throw(/tMax must be positive/);
  });
});
