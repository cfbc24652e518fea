/** Losses against PyTorch 1.13 (test/fixtures/losses.json from gen_layers.py): values and input gradients. */
import { expect } from 'chai';
import { F, nn, tensor, Tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { golden, T } from './golden';

interface LossCase {
  name: string;
  fn: string;
  opts: Record<string, unknown>;
  extra: Record<string, any>;
  input: any;
  target: any;
  gradWeights: any;
  value: any;
  grad: any;
}

const cases = golden<{ cases: LossCase[] }>('losses.json').cases;

describe('nn: losses vs PyTorch', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it(`${cases.length} cases: value and input gradient`, () => {
        for (const c of cases) {
          const x = T(c.input, device, true);
          const extra = Object.fromEntries(Object.entries(c.extra).map(([k, v]) => [k, T(v, device)]));
          const fn = (F as any)[c.fn] as (x: Tensor, t: Tensor, o: object) => Tensor;
          expect(fn, c.fn).to.be.a('function');
          const out = fn(x, T(c.target, device), { ...c.opts, ...extra });
          expectClose(out, c.value, 1e-4, 1e-4, `${c.name} value`);
          out.mul(T(c.gradWeights, device)).sum().backward();
          expectClose(x.grad!, c.grad, 1e-4, 1e-4, `${c.name} grad`);
        }
      });
    });
  }

  it("module forms match the functions; weight is a buffer under PyTorch's key", () => {
    const c = cases.find((k) => k.name === 'ce_weight_ls_mean')!;
    const loss = new nn.CrossEntropyLoss({ weight: tensor(c.extra.weight), labelSmoothing: 0.2 });
    expect(Object.keys(loss.stateDict())).to.deep.equal(['weight']);
    expect(loss.parameters()).to.have.length(0);
    expectClose(loss(tensor(c.input), tensor(c.target)), c.value);
    expect(Object.keys(new nn.CrossEntropyLoss().stateDict())).to.deep.equal([]);
    const m = cases.find((k) => k.name === 'mse_sum')!;
    expectClose(new nn.MSELoss({ reduction: 'sum' })(tensor(m.input), tensor(m.target)), m.value);
    const b = cases.find((k) => k.name === 'bcelogits_posweight_weight_mean')!;
    const bce = new nn.BCEWithLogitsLoss({ weight: tensor(b.extra.weight), posWeight: tensor(b.extra.posWeight) });
    expect(Object.keys(bce.stateDict())).to.deep.equal(['weight', 'pos_weight']);
    expectClose(bce(tensor(b.input), tensor(b.target)), b.value);
    const l = cases.find((k) => k.name === 'nll_weight_ignore_sum')!;
    expectClose(new nn.NLLLoss({ weight: tensor(l.extra.weight), reduction: 'sum' })(tensor(l.input), tensor(l.target)), l.value);
  });

  it('BCE with logits stays finite for huge logits', () => {
    const x = tensor([1000, -1000, 80, -80], { requiresGrad: true });
    const loss = F.binaryCrossEntropyWithLogits(x, tensor([0, 1, 1, 0]), { reduction: 'sum' });
    expectClose(loss, 2000, 1e-3);
    loss.backward();
    expectClose(x.grad!, [1, -1, 0, 0]);
  });

  it('crossEntropy gradient agrees with finite differences (weights, label smoothing, ignored targets)', () => {
    const t = tensor([1, 0, -100, 2]);
    const w = tensor([0.5, 1.5, 1]);
    checkGrad(
      (x) => F.crossEntropy(x, t, { weight: w, labelSmoothing: 0.1 }),
      [
        tensor([
          [0.1, 0.5, -0.3],
          [1, -1, 0.2],
          [0.3, 0.3, 0.3],
          [-0.5, 0.8, 0.1],
        ]),
      ],
    );
  });

  it('errors name the loss and the shapes or values', () => {
    const x = tensor([
      [0.1, 0.2, 0.3],
      [0.3, 0.2, 0.1],
    ]);
    // class indices are range-checked where they live on the host (on 'gpu' that would cost a readback)
    const xc = tensor(
      [
        [0.1, 0.2, 0.3],
        [0.3, 0.2, 0.1],
      ],
      { device: 'cpu' },
    );
    expect(() => F.crossEntropy(xc, tensor([0, 3], { device: 'cpu' }))).to.throw(/crossEntropy: target 3 is out of bounds for 3 classes/);
    expect(() => F.crossEntropy(xc, tensor([0, 1.5], { device: 'cpu' }))).to.throw(/crossEntropy: target 1.5 is not a class index/);
    expect(() => F.crossEntropy(x, tensor([0, 1, 2]))).to.throw(/crossEntropy: expected target of shape \[2\] for input \[2, 3\]/);
    expect(() => F.nllLoss(x, tensor([0, 1]), { weight: tensor([1, 2]) })).to.throw(/nllLoss: weight must have shape \[3\]/);
    expect(() => F.crossEntropy(x, tensor([0, 1]), { reduction: 'avg' as any })).to.throw(/reduction must be 'mean', 'sum' or 'none'/);
    expect(() => F.binaryCrossEntropyWithLogits(x, tensor([1, 0]))).to.throw(/target size \[2\] must be the same as input size \[2, 3\]/);
    expect(() => F.mseLoss(x, tensor([1, 0]))).to.throw(/cannot be broadcast/);
  });

  it('mean over all-ignored targets is NaN, as in PyTorch', () => {
    expect(Number.isNaN(F.crossEntropy(tensor([[1, 2]]), tensor([-100])).item())).to.equal(true);
  });
});
