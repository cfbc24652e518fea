/** Bad arguments are refused by the API the user called, in its words (issue 11's list). */
import { expect } from 'chai';
import { F, nn, tensor, zeros, rand, full, ones, arange, eye } from '../../src';
import { testDevices } from '../helpers';
import { throwsWith } from './util';

/** Runs `fn` with console.warn captured; returns what it warned. */
function warnings(fn: () => void): string[] {
  const seen: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void seen.push(args.map(String).join(' '));
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return seen;
}

describe('input checks', () => {
  it('nn.Sequential names the argument index and type of a non-module', () => {
    throwsWith(() => new nn.Sequential(5 as any), /^Sequential: argument 0 must be a Module/, 'number 5');
    throwsWith(() => new nn.Sequential(new nn.ReLU(), 'x' as any), /^Sequential: argument 1 must be a Module/, 'string "x"');
    throwsWith(() => new nn.Sequential({ a: new nn.ReLU(), b: 3 } as any), "addModule('b')", 'number 3');
    expect(new nn.Sequential({ a: new nn.ReLU() }).length).to.equal(1);
  });

  it('nn.Linear names a bad size argument', () => {
    throwsWith(() => new nn.Linear('4' as any, 3), /^Linear: inFeatures must be a non-negative integer/, 'string "4"');
    throwsWith(() => new nn.Linear(4, 2.5), /^Linear: outFeatures must be a non-negative integer/, '2.5');
    throwsWith(() => new nn.LazyLinear(-1), /^LazyLinear: outFeatures/);
  });

  it('creation ops name a bad dim (non-integer, negative, NaN, not a number)', () => {
    throwsWith(() => zeros([2, 1.5]), /^zeros: shape must be an array of non-negative integers/, '1.5 at dim 1');
    throwsWith(() => ones([-1]), /^ones: /, '-1 at dim 0');
    throwsWith(() => rand([NaN]), /^rand: /, 'NaN at dim 0');
    throwsWith(() => full(['3' as any], 1), /^full: /, `'3' at dim 0`);
    throwsWith(() => tensor([1, 2], { shape: [2.5] }), /^tensor: /, '2.5 at dim 0');
    throwsWith(() => eye(2, 1.5), /^eye: /, '1.5 at dim 1');
    throwsWith(() => arange(0, Infinity), /^arange: .*finite/);
  });

  it('tensor() converts BigInt64Array / BigUint64Array / bigint elements', () => {
    expect(tensor(new BigInt64Array([1n, -2n, 3n])).toArray()).to.deep.equal([1, -2, 3]);
    expect(tensor(new BigUint64Array([7n])).toArray()).to.deep.equal([7]);
    expect(tensor([[1n, 2n]] as any).toArray()).to.deep.equal([[1, 2]]);
  });

  it('F.mseLoss names itself and both shapes; a broadcasting target warns once, as PyTorch does', () => {
    throwsWith(() => F.mseLoss(zeros([2, 3]), zeros([3, 2])), /^mseLoss: /, '[2, 3]', '[3, 2]');
    const first = warnings(() => F.mseLoss(zeros([2, 3]), zeros([3])));
    expect(first).to.have.length(1);
    expect(first[0]).to.match(/mseLoss: using a target size \[3\] that is different to the input size \[2, 3\]/);
    expect(warnings(() => F.mseLoss(zeros([2, 3]), zeros([3])))).to.deep.equal([]);
    expect(warnings(() => F.mseLoss(zeros([2, 3]), zeros([2, 3])))).to.deep.equal([]);
    // still computed the broadcast way (PyTorch's value): mean over [2, 3] of (x - t)^2
    const y = F.mseLoss(
      tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]),
      tensor([1, 1, 1]),
    ).item();
    expect(y).to.be.closeTo((0 + 1 + 4 + 9 + 16 + 25) / 6, 1e-6);
  });

  it('an Embedding index 1.7 is called a non-integer, not out of range', () => {
    throwsWith(() => new nn.Embedding(3, 2).to('cpu')(tensor([1.7], { device: 'cpu' })), /^Embedding: indices must be integers, got 1\.7$/);
    throwsWith(
      () => tensor([[1, 2]], { device: 'cpu' }).indexSelect(1, tensor([0.5], { device: 'cpu' })),
      /^indexSelect: indices must be integers, got 0\.5$/,
    );
  });

  for (const device of testDevices()) {
    it(`${device}: NaN is the max and the min: argmax/argmin pick the first NaN, max/min return NaN (PyTorch)`, () => {
      const x = tensor([1, NaN, 3, NaN], { device });
      expect(x.argmax().item()).to.equal(1);
      expect(x.argmin().item()).to.equal(1);
      expect(Number.isNaN(x.max().item())).to.equal(true);
      expect(Number.isNaN(x.min().item())).to.equal(true);
      const m = tensor(
        [
          [1, NaN, 2],
          [5, 2, 9],
          [NaN, 7, NaN],
        ],
        { device },
      );
      expect(m.argmax(1).toArray()).to.deep.equal([1, 2, 0]);
      expect(m.argmin(1).toArray()).to.deep.equal([1, 1, 0]);
      expect(m.argmax(0).toArray()).to.deep.equal([2, 0, 2]);
      expect(m.argmin(0).toArray()).to.deep.equal([2, 0, 2]);
      // the chunked (two-pass) path: the NaN sits in a later chunk than a larger number
      const long = new Float32Array(40000).fill(0);
      long[5] = 100;
      long[30000] = NaN;
      long[35000] = NaN;
      expect(tensor(long, { device }).argmax().item()).to.equal(30000);
      expect(tensor(long, { device }).argmin().item()).to.equal(30000);
    });
  }
});
