/** Autograd semantics: accumulation, grad modes, detach, views, in-place ops and the version check, graph lifetime. */
import { expect } from 'chai';
import { enableGrad, isGradEnabled, noGrad, ops, tensor, Tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { seeded, throwsWith } from './util';

describe('autograd semantics', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it('gradients accumulate into .grad across backward calls (in place: the same tensor)', () => {
        const x = tensor([1, 2, 3], { device, requiresGrad: true });
        x.mul(x).sum().backward();
        expectClose(x.grad!, [2, 4, 6]);
        const g = x.grad!;
        x.mul(3).sum().backward();
        expectClose(x.grad!, [5, 7, 9]);
        expect(x.grad).to.equal(g);
        x.grad!.zero_();
        x.sum().backward();
        expectClose(x.grad!, [1, 1, 1]);
        x.grad = null;
        x.sum().backward();
        expectClose(x.grad!, [1, 1, 1]);
      });
      it('one tensor used twice, and a leaf reached by two paths, gets the summed gradient', () => {
        const x = tensor([1, 2], { device, requiresGrad: true });
        const y = x.mul(2);
        y.mul(y).add(y).add(x).sum().backward(); // 4x² + 2x + x
        expectClose(x.grad!, [8 * 1 + 3, 8 * 2 + 3]);
      });
      it("a fresh .grad is the leaf's own: not shared between leaves, with the seed, or with pending rules", () => {
        // add's rule hands the same gradient tensor to both inputs: two leaves must not share one .grad
        const a = tensor([1, 2], { device, requiresGrad: true });
        const b = tensor([3, 4], { device, requiresGrad: true });
        a.add(b)
          .mul(tensor([2, 3], { device }))
          .sum()
          .backward();
        expect(a.grad).to.not.equal(b.grad);
        a.grad!.add_(100);
        expectClose(b.grad!, [2, 3]);
        // the caller's seed is copied, not adopted
        const leaf = tensor([1, 2], { device, requiresGrad: true });
        const seed = tensor([5, 6], { device });
        leaf.backward(seed);
        expect(leaf.grad).to.not.equal(seed);
        seed.mul_(0);
        expectClose(leaf.grad!, [5, 6]);
        // w reached three times: through w itself (the same gradient object the other branches still
        // read), through w² and through 3w; accumulating must not disturb the gradients still in flight
        const w = tensor([1, -2, 0.5], { device, requiresGrad: true });
        w.add(w.mul(w))
          .add(w.mul(3))
          .mul(tensor([1, 2, 3], { device }))
          .sum()
          .backward();
        expectClose(w.grad!, [1 * (1 + 2 * 1 + 3), 2 * (1 + 2 * -2 + 3), 3 * (1 + 2 * 0.5 + 3)]);
        // a leaf reached once, by a gradient made during backward: still its own tensor afterwards
        const v = tensor([1, 2, 3], { device, requiresGrad: true });
        v.mul(v).sum().backward();
        const first = v.grad!;
        v.mul(v).sum().backward();
        expect(v.grad).to.equal(first);
        expectClose(v.grad!, [4, 8, 12]);
      });
      it('backward(grad) for non-scalar outputs; implicit grad only for one element', () => {
        const x = tensor([1, 2, 3], { device, requiresGrad: true });
        x.mul(2).backward(tensor([1, 0, -1], { device }));
        expectClose(x.grad!, [2, 0, -2]);
        throwsWith(() => x.mul(2).backward(), 'backward', 'one-element', '[3]');
        throwsWith(() => x.mul(2).backward(tensor([1, 2], { device })), 'backward', '[2]', '[3]');
        throwsWith(() => tensor([1], { device }).backward(), 'backward', 'does not require grad');
      });
      it('noGrad records nothing; enableGrad inside it does; the flag is restored after a throw', () => {
        const x = tensor([1, 2], { device, requiresGrad: true });
        const y = noGrad(() => x.mul(2));
        expect(y.requiresGrad).to.equal(false);
        expect(y.gradFn).to.equal(null);
        const z = noGrad(() => enableGrad(() => x.mul(2)));
        expect(z.requiresGrad).to.equal(true);
        expect(() =>
          noGrad(() => {
            throw new Error('boom');
          }),
        ).to.throw('boom');
        expect(isGradEnabled()).to.equal(true);
      });
      it('detach shares data but cuts the graph', () => {
        const x = tensor([1, 2], { device, requiresGrad: true });
        const d = x.mul(3).detach();
        expect(d.requiresGrad).to.equal(false);
        expect(d.gradFn).to.equal(null);
        expectClose(d, [3, 6]);
        const y = x.mul(d); // d is a constant here
        y.sum().backward();
        expectClose(x.grad!, [3, 6]);
        const xd = x.detach();
        expect(xd.storage).to.equal(x.storage);
      });
      it('requiresGrad propagates through ops; leaves vs non-leaves', () => {
        const a = tensor([1, 2], { device, requiresGrad: true });
        const b = tensor([3, 4], { device });
        expect(b.add(b).requiresGrad).to.equal(false);
        const c = a.add(b);
        expect(c.requiresGrad).to.equal(true);
        expect(c.isLeaf).to.equal(false);
        expect(a.isLeaf).to.equal(true);
        expect(c.reshape(2, 1).permute(1, 0).requiresGrad).to.equal(true);
        // comparisons and argmax are not differentiable
        expect(a.gt(b).requiresGrad).to.equal(false);
        expect(a.argmax().requiresGrad).to.equal(false);
        c.sum().backward();
        expect(b.grad).to.equal(null);
        expect(c.grad).to.equal(null); // only leaves keep .grad
        throwsWith(() => c.requiresGrad_(false), 'requiresGrad_', 'leaf');
      });
      it('gradients through broadcasting reduce back to each input shape', () => {
        const a = tensor([[1], [2]], { device, requiresGrad: true }); // [2,1]
        const b = tensor([1, 2, 3], { device, requiresGrad: true }); // [3]
        const s = tensor(2, { device, requiresGrad: true }); // []
        a.mul(b).add(s).sum().backward();
        expectClose(a.grad!, [[6], [6]]);
        expectClose(b.grad!, [3, 3, 3]);
        expectClose(s.grad!, [6]);
        expect(s.grad!.shape).to.deep.equal([]);
        checkGrad((p, q, r) => p.mul(q).div(r.add(3)), [a, b, s]);
      });
      it('gradients through views: slice, permute, expand, and a chain of them', () => {
        const x = seeded([3, 4], device, 1, -2, 2, true);
        x.slice(1, 1, 3).sum().backward();
        expectClose(x.grad!, [
          [0, 1, 1, 0],
          [0, 1, 1, 0],
          [0, 1, 1, 0],
        ]);
        x.grad = null;
        x.permute(1, 0)
          .mul(tensor([[1, 2, 3]], { device }))
          .sum()
          .backward();
        expectClose(x.grad!, [
          [1, 1, 1, 1],
          [2, 2, 2, 2],
          [3, 3, 3, 3],
        ]);
        const c = tensor([[1], [2]], { device, requiresGrad: true });
        c.expand(2, 5).sum().backward();
        expectClose(c.grad!, [[5], [5]]);
        checkGrad(
          (t) =>
            t.T.slice(0, 1, 4, 2)
              .unsqueeze(0)
              .expand(2, 2, 3)
              .mul(t.slice(1, 0, 3).T.slice(0, 0, 2)),
          [x],
        );
      });
      it('in-place ops on non-leaf tensors keep gradients right, including earlier uses of the old value', () => {
        const w = tensor([1, 2, 3], { device, requiresGrad: true });
        const x = w.mul(1);
        const early = x.sum(); // uses x before the in-place op
        x.mul_(2); // x is now 2w
        x.add_(w); // x is now 3w
        x.mul(x).sum().add(early).backward(); // 9w² + w
        expectClose(w.grad!, [19, 37, 55]);
        expect(x.gradFn!.name).to.equal('add');
      });
      it('a tensor saved for backward and then modified in place makes backward throw', () => {
        const x = tensor([1, 2, 3], { device, requiresGrad: true });
        const y = x.mul(2);
        const z = y.mul(y); // saves y
        y.add_(1);
        throwsWith(() => z.sum().backward(), 'modified by an in-place operation', 'mul');
        // an op that saves its output: exp, sigmoid, tanh, softmax
        for (const f of [
          (t: Tensor) => t.exp(),
          (t: Tensor) => t.sigmoid(),
          (t: Tensor) => t.tanh(),
          (t: Tensor) => t.softmax(0),
          (t: Tensor) => t.sqrt(),
        ]) {
          const out = f(x.add(1));
          out.mul_(2);
          throwsWith(() => out.sum().backward(), 'modified by an in-place operation');
        }
        // but an op that does not read the overwritten value is fine (as in PyTorch)
        const a = x.mul(2);
        const b = a.add(1); // add saves nothing
        a.zero_();
        b.sum().backward();
        expectClose(x.grad!, [2, 2, 2]);
        // and an in-place op on a detached alias also counts
        const p = x.mul(1);
        const q = p.exp();
        p.detach().zero_();
        const r = p.mul(q);
        r.sum(); // forward is fine
        const s = x.mul(1).mul(p);
        p.detach().add_(1);
        throwsWith(() => s.sum().backward(), 'modified by an in-place operation');
      });
      it('in-place on a leaf that requires grad throws (outside noGrad)', () => {
        const w = tensor([1, 2], { device, requiresGrad: true });
        throwsWith(() => w.add_(1), 'add_', 'leaf', 'requires grad', 'noGrad');
        throwsWith(() => w.zero_(), 'fill_', 'leaf');
        throwsWith(() => w.copy_(tensor([0, 0], { device })), 'copy_', 'leaf');
        throwsWith(() => w.slice(0, 0, 1).mul_(2), 'mul_');
        expectClose(w, [1, 2]);
      });
      it('backward twice through the same graph throws unless retainGraph', () => {
        const x = tensor([1, 2], { device, requiresGrad: true });
        const y = x.exp().sum();
        y.backward();
        throwsWith(() => y.backward(), 'second time', 'retainGraph');
        const z = x.mul(x).sum();
        z.backward(undefined, { retainGraph: true });
        z.backward();
        expectClose(x.grad!, [Math.E + 4, Math.exp(2) + 8], 1e-4, 1e-5);
      });
      it('a graph across devices: gradients come back to each leaf on its own device', () => {
        const ds = testDevices();
        const other = ds[(ds.indexOf(device) + 1) % ds.length];
        const a = tensor([1, 2], { device, requiresGrad: true });
        const b = tensor([3, 4], { device: other, requiresGrad: true });
        a.to(other).mul(b).sum().backward();
        expect(a.grad!.device).to.equal(device);
        expectClose(a.grad!, [3, 4]);
        expectClose(b.grad!, [1, 2]);
      });
      it('where, clamp, max: no gradient to the unselected side', () => {
        const x = tensor([-1, 0.5, 2], { device, requiresGrad: true });
        const y = tensor([5, 5, 5], { device, requiresGrad: true });
        ops.where(x.gt(0), x, y).sum().backward();
        expectClose(x.grad!, [0, 1, 1]);
        expectClose(y.grad!, [1, 0, 0]);
      });
    });
  }
});
