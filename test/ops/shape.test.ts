/** Shape and view ops: values, which ones share storage, gradients, errors. */
import { expect } from 'chai';
import { ops, Tensor, tensor, zeros } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, seeded, throwsWith, unravel, ravel } from './util';

const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('ops: shape and views', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      const x = seeded([2, 3, 4], device, 71);
      const xa = arr(x);

      it('reshape / view / flatten: values, -1, views of contiguous data share storage', () => {
        const r = x.reshape(4, -1);
        expect(r.shape).to.deep.equal([4, 6]);
        expectClose(r, xa.data);
        expect(r.storage).to.equal(x.storage);
        expect(x.view([6, 4]).storage).to.equal(x.storage);
        expect(x.flatten().shape).to.deep.equal([24]);
        expect(x.flatten(1).shape).to.deep.equal([2, 12]);
        expect(x.flatten(0, 1).shape).to.deep.equal([6, 4]);
        expect(tensor(5, { device }).flatten().shape).to.deep.equal([1]);
        // reshape of a non-contiguous tensor copies, in row-major order of the view
        const t = x.transpose(0, 2).reshape(-1);
        const want = iota(24).map((i) => {
          const [c, b, a] = unravel(i, [4, 3, 2]);
          return xa.data[ravel([a, b, c], [2, 3, 4])];
        });
        expectClose(t, want);
        checkGrad((v) => v.reshape(4, 6), [x]);
        checkGrad((v) => v.transpose(0, 2).reshape(-1), [x]);
        checkGrad((v) => v.view(6, 4), [x]);
        checkGrad((v) => v.flatten(1), [x]);
      });
      it('view of a non-contiguous tensor throws; reshape errors', () => {
        throwsWith(() => x.transpose(0, 1).view(-1), 'view', 'not contiguous', '[3, 2, 4]');
        throwsWith(() => x.reshape(5, -1), 'reshape', '[2, 3, 4]', '[5, -1]');
        throwsWith(() => x.reshape(-1, -1), 'reshape', 'only one dimension can be -1');
      });
      it('permute / transpose / T: values (views), gradients', () => {
        const p = x.permute(2, 0, 1);
        expect(p.shape).to.deep.equal([4, 2, 3]);
        expect(p.storage).to.equal(x.storage);
        const want = iota(24).map((i) => {
          const [c, a, b] = unravel(i, [4, 2, 3]);
          return xa.data[ravel([a, b, c], [2, 3, 4])];
        });
        expectClose(p, want);
        expectClose(x.transpose(0, 2).permute(2, 1, 0), xa.data);
        expectClose(x.permute([-1, 0, 1]), want);
        expect(seeded([2, 3], device, 1).T.shape).to.deep.equal([3, 2]);
        checkGrad((v) => v.permute(2, 0, 1), [x]);
        checkGrad((v) => v.transpose(1, 2), [x]);
        throwsWith(() => x.permute(0, 1), 'permute', '[2, 3, 4]');
        throwsWith(() => x.permute(0, 1, 1), 'permute', 'repeat');
      });
      it('unsqueeze / squeeze: shapes, views, gradients', () => {
        expect(x.unsqueeze(0).shape).to.deep.equal([1, 2, 3, 4]);
        expect(x.unsqueeze(-1).shape).to.deep.equal([2, 3, 4, 1]);
        expect(x.unsqueeze(2).shape).to.deep.equal([2, 3, 1, 4]);
        const u = x.unsqueeze(1).unsqueeze(3); // [2,1,3,1,4]
        expect(u.storage).to.equal(x.storage);
        expect(u.squeeze().shape).to.deep.equal([2, 3, 4]);
        expect(u.squeeze(1).shape).to.deep.equal([2, 3, 1, 4]);
        expect(u.squeeze(0).shape).to.deep.equal([2, 1, 3, 1, 4]);
        expectClose(u.squeeze(), xa.data);
        // squeeze/unsqueeze of a strided view keep it a view with the right values
        const tv = x.transpose(0, 2).unsqueeze(1);
        expectClose(tv.squeeze(1), arr(x.transpose(0, 2).contiguous()).data);
        checkGrad((v) => v.unsqueeze(1).squeeze(), [x]);
        checkGrad((v) => v.transpose(0, 2).unsqueeze(1).mul(2), [x]);
      });
      it('expand: values, stride-0 view, gradient sums over the expanded dims', () => {
        const c = seeded([3, 1], device, 5);
        const e = c.expand(2, 3, 4);
        expect(e.shape).to.deep.equal([2, 3, 4]);
        expect(e.storage).to.equal(c.storage);
        const ca = arr(c).data;
        expectClose(
          e,
          iota(24).map((i) => ca[unravel(i, [2, 3, 4])[1]]),
        );
        expect(c.expand(-1, 5).shape).to.deep.equal([3, 5]);
        checkGrad((v) => v.expand(2, 3, 4), [c]);
        throwsWith(() => c.expand(2, 4), 'expand', '[3, 1]', '[2, 4]');
      });
      it('slice (with step, negative indices, clamping) and narrow: views, values, gradients', () => {
        const s = x.slice(2, 1, undefined, 2); // [2, 3, 2]
        expect(s.shape).to.deep.equal([2, 3, 2]);
        expect(s.storage).to.equal(x.storage);
        expectClose(
          s,
          iota(12).map((i) => {
            const [a, b, c] = unravel(i, [2, 3, 2]);
            return xa.data[ravel([a, b, 1 + 2 * c], [2, 3, 4])];
          }),
        );
        expect(x.slice(1, -2).shape).to.deep.equal([2, 2, 4]);
        expect(x.slice(1, 0, 100).shape).to.deep.equal([2, 3, 4]);
        expect(x.slice(1, 2, 1).shape).to.deep.equal([2, 0, 4]);
        expect(x.slice(2, 0, 4, 3).shape).to.deep.equal([2, 3, 2]);
        const n = x.narrow(1, 1, 2);
        // against the JS reference: narrow is built on slice, so slice cannot be its reference
        expectClose(
          n,
          iota(16).map((i) => {
            const [a, b, c] = unravel(i, [2, 2, 4]);
            return xa.data[ravel([a, 1 + b, c], [2, 3, 4])];
          }),
        );
        checkGrad((v) => v.slice(2, 1, undefined, 2), [x]);
        checkGrad((v) => v.slice(2, 0, 4, 3).slice(0, 1), [x]);
        checkGrad((v) => v.slice(1, -2, undefined, 1), [x]);
        checkGrad((v) => v.narrow(1, 1, 2), [x]);
        // slices of slices (offsets compose)
        const ss = x.slice(0, 1).slice(2, 1, 3).slice(1, 2);
        expectClose(ss, [xa.data[ravel([1, 2, 1], [2, 3, 4])], xa.data[ravel([1, 2, 2], [2, 3, 4])]]);
        throwsWith(() => x.narrow(1, 2, 2), 'narrow', 'size 3');
        throwsWith(() => x.slice(1, 0, 2, 0), 'slice', 'step');
      });
      it('cat / stack: values, any dim, gradients, empty parts', () => {
        const a = seeded([2, 3], device, 1);
        const b = seeded([2, 1], device, 2);
        const c = seeded([2, 2], device, 3);
        const y = ops.cat([a, b, c], 1);
        expect(y.shape).to.deep.equal([2, 6]);
        const aa = arr(a).data,
          ba = arr(b).data,
          cc = arr(c).data;
        expectClose(y, [...aa.slice(0, 3), ba[0], ...cc.slice(0, 2), ...aa.slice(3), ba[1], ...cc.slice(2)]);
        expectClose(ops.cat([a, a.mul(2)], 0), [...aa, ...aa.map((v) => 2 * v)]);
        checkGrad((p, q, r) => ops.cat([p, q, r], 1), [a, b, c]);
        checkGrad((p) => ops.cat([p, p.slice(1, 1)], -1), [a]);
        // zero-size parts (first, middle, last) are skipped
        const e = zeros([2, 0], { device });
        expectClose(ops.cat([e, a, e, b, e], 1), arr(ops.cat([a, b], 1)).data);
        const st = ops.stack([a, a.mul(3)], 1);
        expect(st.shape).to.deep.equal([2, 2, 3]);
        expectClose(st, [...aa.slice(0, 3), ...aa.slice(0, 3).map((v) => 3 * v), ...aa.slice(3), ...aa.slice(3).map((v) => 3 * v)]);
        expect(ops.stack([a, a], -1).shape).to.deep.equal([2, 3, 2]);
        checkGrad((p, q) => ops.stack([p, q], 0), [a, c.slice(1, 0, 1).expand(2, 3).contiguous()]);
        throwsWith(() => ops.cat([a, seeded([3, 3], device, 1)], 1), 'cat', '[3, 3]');
        throwsWith(() => ops.stack([a, b]), 'stack', '[2, 1]');
        throwsWith(() => ops.cat([]), 'cat');
      });
      it('clone / contiguous: copies vs identity, gradients', () => {
        const t = x.transpose(0, 1);
        const c = t.contiguous();
        expect(c.isContiguous).to.equal(true);
        expect(c.storage).to.not.equal(x.storage);
        expectClose(c, arr(t).data);
        expect(x.contiguous()).to.equal(x);
        const k = x.clone();
        expect(k.storage).to.not.equal(x.storage);
        expectClose(k, xa.data);
        checkGrad((v) => v.transpose(0, 1).contiguous(), [x]);
        checkGrad((v) => v.clone().mul(v), [x]);
      });
      it('to(device) copies and lets gradients flow back', () => {
        for (const other of testDevices()) {
          const a = seeded([2, 2], device, 3, -2, 2, true);
          const moved = a.to(other);
          expect(moved.device).to.equal(other);
          expectClose(moved, arr(a).data);
          moved.mul(2).sum().backward();
          expect(a.grad!.device).to.equal(device);
          expectClose(a.grad!, [2, 2, 2, 2]);
        }
      });
    });
  }
});

export type _unused = Tensor;
