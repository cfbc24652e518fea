/** The test helpers themselves: a check that cannot fail proves nothing. */
import { expect } from 'chai';
import { tensor, Tensor } from '../src';
import { checkGrad, expectClose } from './helpers';

const fails = (fn: () => void) => expect(fn).to.throw(/element|length/);

describe('test helpers', () => {
  describe('expectClose', () => {
    it('passes within atol + rtol*|expected| and fails beyond it', () => {
      expectClose([1, 2, 3], [1, 2, 3], 0, 0);
      expectClose([1.05, -2], [1, -2], 0.06, 0);
      expectClose([110], [100], 0, 0.1);
      fails(() => expectClose([1.05, -2], [1, -2], 0.04, 0));
      fails(() => expectClose([111], [100], 0, 0.1));
      fails(() => expectClose([1, 2], [1, 2, 3]));
    });
    it('compares infinities exactly: +Inf only equals +Inf, -Inf only -Inf', () => {
      expectClose([Infinity, -Infinity, 1], [Infinity, -Infinity, 1]);
      for (const [got, want] of [
        [5, Infinity],
        [-Infinity, Infinity],
        [Infinity, -Infinity],
        [5, -Infinity],
        [1e30, Infinity],
        [Infinity, 5],
        [NaN, Infinity],
        [Infinity, NaN],
      ]) {
        fails(() => expectClose([got], [want], 1, 1));
        fails(() => expectClose([0, got], [0, want], 1e9, 1e9));
      }
    });
    it('compares NaN exactly: NaN only equals NaN', () => {
      expectClose([NaN, 1], [NaN, 1]);
      fails(() => expectClose([NaN], [0], 1e9, 1e9));
      fails(() => expectClose([0], [NaN], 1e9, 1e9));
    });
    it('reads tensors, nested arrays and Float32Arrays alike, and names the worst element', () => {
      expectClose(tensor([[1, Infinity]], { device: 'cpu' }), [[1, Infinity]], 0, 0);
      expectClose(new Float32Array([NaN, -Infinity]), [NaN, -Infinity], 0, 0);
      expect(() => expectClose([1, 2, 9, 4], [1, 2, 3, 4.5], 0.1, 0, 'probe')).to.throw('probe element 2: got 9, expected 3');
    });
  });
  describe('checkGrad', () => {
    it('fails for a wrong gradient', () => {
      // half detached: autograd gives x where the derivative is 2x
      const f = (x: Tensor) => x.mul(x.detach());
      checkGrad((x) => x.mul(x), [tensor([1, -2, 3], { device: 'cpu' })]);
      expect(() => checkGrad(f, [tensor([1, -2, 3], { device: 'cpu' })])).to.throw(/grad of input 0/);
    });
  });
});
