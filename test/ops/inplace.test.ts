/** In-place ops: values, writes through views, broadcasting operands, gradients through non-leaf targets. */
import { expect } from 'chai';
import { noGrad, Tensor, tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, seeded, throwsWith } from './util';

describe('ops: in-place', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it('add_ sub_ mul_ div_ with tensors (broadcast) and numbers; return the target; bump the version', () => {
        const x = seeded([2, 3], device, 1);
        const xa = arr(x).data;
        const o = seeded([3], device, 2, 0.5, 1.5);
        const oa = arr(o).data;
        const v0 = x.storage.version;
        expect(x.add_(o)).to.equal(x);
        expectClose(
          x,
          xa.map((v, i) => v + oa[i % 3]),
          1e-6,
          1e-6,
        );
        x.sub_(2).mul_(o).div_(4);
        expectClose(
          x,
          xa.map((v, i) => ((v + oa[i % 3] - 2) * oa[i % 3]) / 4),
          1e-6,
          1e-5,
        );
        x.div_(o).sub_(o);
        expect(x.storage.version).to.equal(v0 + 6);
        throwsWith(() => seeded([3], device, 1).add_(seeded([2, 3], device, 1)), 'add_', '[2, 3]', '[3]');
      });
      it('zero_ fill_ copy_ values; copy_ broadcasts and crosses devices', () => {
        const x = seeded([2, 3], device, 3);
        x.fill_(2.5);
        expectClose(x, Array(6).fill(2.5));
        x.zero_();
        expectClose(x, Array(6).fill(0));
        x.copy_(tensor([1, 2, 3], { device }));
        expectClose(x, [1, 2, 3, 1, 2, 3]);
        // new values from each device: a copy that did nothing would leave the previous device's
        testDevices().forEach((other, k) => {
          x.copy_(tensor([[7 + k], [8 + k]], { device: other }));
          expectClose(x, [7 + k, 7 + k, 7 + k, 8 + k, 8 + k, 8 + k], 1e-6, 1e-6, `copy_ from ${other}`);
        });
      });
      it('writes through views into the base tensor (slice with step, transpose, narrow)', () => {
        const base = tensor(
          [
            [0, 1, 2, 3],
            [4, 5, 6, 7],
            [8, 9, 10, 11],
          ],
          { device },
        );
        base.slice(1, 1, undefined, 2).mul_(10);
        expectClose(base, [
          [0, 10, 2, 30],
          [4, 50, 6, 70],
          [8, 90, 10, 110],
        ]);
        base.T.narrow(0, 0, 1).fill_(-1); // column 0
        expectClose(base, [
          [-1, 10, 2, 30],
          [-1, 50, 6, 70],
          [-1, 90, 10, 110],
        ]);
        base.narrow(0, 1, 1).zero_();
        expectClose(base, [
          [-1, 10, 2, 30],
          [0, 0, 0, 0],
          [-1, 90, 10, 110],
        ]);
        base
          .slice(0, 2)
          .slice(1, 2)
          .copy_(tensor([5, 6], { device }));
        expectClose(base, [
          [-1, 10, 2, 30],
          [0, 0, 0, 0],
          [-1, 90, 5, 6],
        ]);
        const v = base.reshape(-1);
        v.add_(1);
        expectClose(base, [
          [0, 11, 3, 31],
          [1, 1, 1, 1],
          [0, 91, 6, 7],
        ]);
        // a size-1 dim whose stride is larger than another dim's (an inner slice with a big step)
        const b2 = tensor(
          [
            [0, 1],
            [2, 3],
            [4, 5],
          ],
          { device },
        );
        const col = b2.slice(1, 0, undefined, 3); // [3, 1], strides [2, 3]
        col.mul_(10);
        expectClose(b2, [
          [0, 1],
          [20, 3],
          [40, 5],
        ]);
        throwsWith(() => tensor([1], { device }).expand(3).add_(1), 'expanded');
      });
      it('gradients through in-place ops on non-leaf tensors', () => {
        const ops: [string, (y: Tensor, o: Tensor) => Tensor][] = [
          ['add_', (y, o) => y.add_(o)],
          ['sub_', (y, o) => y.sub_(o)],
          ['mul_', (y, o) => y.mul_(o)],
          ['div_', (y, o) => y.div_(o)],
        ];
        const a = seeded([2, 3], device, 4);
        const b = seeded([3], device, 5, 0.5, 1.5);
        for (const [name, op] of ops) {
          checkGrad((p, q) => op(p.mul(1.5), q).mul(p), [a, b]);
          // the target also keeps feeding an earlier use of its old value
          checkGrad(
            (p, q) => {
              const y = p.add(1);
              const s = y.sum(1, true);
              return op(y, q).add(s);
            },
            [a, b],
          );
          void name;
        }
        checkGrad((p) => p.mul(2).fill_(3).mul(p), [a]);
        // the target as its own operand
        checkGrad(
          (p) => {
            const y = p.add(0.5);
            return y.mul_(y);
          },
          [a],
        );
        checkGrad(
          (p) => {
            const y = p.mul(1);
            return y.add_(y).div_(y.add(3));
          },
          [a],
        );
        checkGrad((p, q) => p.mul(2).copy_(q).mul(p), [a, b]);
        checkGrad((p, q) => p.mul(2).copy_(q.to(testDevices()[0])).mul(p), [a, b]);
      });
      it('a non-leaf that did not require grad joins the graph when the operand does', () => {
        const w = tensor([1, 2, 3], { device, requiresGrad: true });
        const x = tensor([1, 1, 1], { device });
        x.mul_(w);
        expect(x.requiresGrad).to.equal(true);
        x.sum().backward();
        expectClose(w.grad!, [1, 1, 1]);
      });
      it('in-place updates of a leaf inside noGrad (an optimizer step) are allowed', () => {
        const w = tensor([1, 2, 3], { device, requiresGrad: true });
        noGrad(() => w.sub_(tensor([0.5, 0.5, 0.5], { device })).mul_(2));
        expectClose(w, [1, 3, 5]);
        expect(w.isLeaf).to.equal(true);
        expect(w.requiresGrad).to.equal(true);
      });
    });
  }
});
