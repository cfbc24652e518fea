/** Reductions and softmax-family ops: values against JS references, gradients against finite differences. */
import { expect } from 'chai';
import { ops, tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, reduceRef, seeded, throwsWith } from './util';

const sumRef = (a: number, v: number) => a + v;

describe('ops: reductions', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      const x = seeded([2, 3, 4], device, 21);
      const xa = arr(x);
      const dimCases: { dim?: number | number[]; dims: number[] }[] = [
        { dims: [0, 1, 2] },
        { dim: 0, dims: [0] },
        { dim: 1, dims: [1] },
        { dim: -1, dims: [2] },
        { dim: [0, 2], dims: [0, 2] },
      ];

      it('sum over all, one, negative and several dims, with keepdim', () => {
        for (const { dim, dims } of dimCases) {
          for (const keepdim of [false, true]) {
            const y = x.sum(dim, keepdim);
            const r = reduceRef(xa, dims, keepdim, 0, sumRef);
            expect(y.shape, `sum(${dim}, ${keepdim}) shape`).to.deep.equal(r.shape);
            expectClose(y, r.data, 1e-5, 1e-5, `sum(${dim}, ${keepdim})`);
          }
        }
      });
      it('sums with a long last dim (webasm: the lane-parallel kernel), incl. views and BatchNorm-style dims', () => {
        const big = seeded([3, 5, 4, 9], device, 23);
        const views = [big, big.transpose(1, 3), big.narrow(3, 1, 8)]; // contiguous, strided last dim, offset view
        const cases: (number | number[])[] = [[0, 2, 3], [0], [0, 1, 2], [1, 3], [0, 1, 2, 3], [2]];
        for (const v of views) {
          const va = arr(v);
          for (const dim of cases) {
            const dims = (Array.isArray(dim) ? dim : [dim]).map((d) => (d + v.ndim) % v.ndim);
            for (const keepdim of [false, true]) {
              const y = v.sum(dim, keepdim);
              const r = reduceRef(va, dims, keepdim, 0, sumRef);
              expect(y.shape, `sum(${dim}) of ${v.shape}`).to.deep.equal(r.shape);
              expectClose(y, r.data, 1e-5, 1e-5, `sum(${dim}, ${keepdim}) of a [${v.shape}] view`);
            }
          }
        }
        checkGrad((t) => t.sum([0, 2, 3]), [seeded([2, 3, 2, 8], device, 24)]);
      });
      it('sum gradients', () => {
        for (const { dim } of dimCases) checkGrad((t) => t.sum(dim), [x]);
        checkGrad((t) => t.sum([0, 2], true), [x]);
      });
      it('mean values and gradients', () => {
        for (const { dim, dims } of dimCases) {
          expectClose(x.mean(dim), reduceRef(xa, dims, false, 0, sumRef, (a, n) => a / n).data, 1e-5, 1e-5, `mean(${dim})`);
        }
        checkGrad((t) => t.mean(1), [x]);
        checkGrad((t) => t.mean([0, 2], true), [x]);
        checkGrad((t) => t.mean(), [x]);
      });
      it('var (unbiased and biased) values and gradients', () => {
        const varRef = (dims: number[], unbiased: boolean) => {
          const m = reduceRef(xa, dims, true, 0, sumRef, (a, n) => a / n);
          const n = dims.reduce((p, d) => p * xa.shape[d], 1);
          const sq = {
            data: xa.data.map((v, i) => {
              const idx = [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4].map((k, d) => (dims.includes(d) ? 0 : k));
              const o = idx[0] * m.shape[1] * m.shape[2] + idx[1] * m.shape[2] + idx[2];
              return (v - m.data[o]) ** 2;
            }),
            shape: xa.shape,
          };
          return reduceRef(sq, dims, false, 0, sumRef, (a) => a / (unbiased ? n - 1 : n));
        };
        for (const { dim, dims } of dimCases) {
          expectClose(x.var(dim), varRef(dims, true).data, 1e-5, 1e-4, `var(${dim})`);
          expectClose(x.var(dim, { unbiased: false }), varRef(dims, false).data, 1e-5, 1e-4, `var(${dim}, biased)`);
        }
        expect(x.var(1, { keepdim: true }).shape).to.deep.equal([2, 1, 4]);
        checkGrad((t) => t.var(1), [x]);
        checkGrad((t) => t.var(undefined, { unbiased: false }), [x]);
        // one element: the unbiased estimate divides by zero, as in PyTorch
        expect(Number.isNaN(tensor([3], { device }).var().item())).to.equal(true);
        expectClose(tensor([3], { device }).var(undefined, { unbiased: false }), [0]);
      });
      it('max / min values and gradients (no ties)', () => {
        for (const op of ['max', 'min'] as const) {
          const fold = op === 'max' ? Math.max : Math.min;
          expectClose(x[op](), reduceRef(xa, [0, 1, 2], false, op === 'max' ? -Infinity : Infinity, fold).data, 0, 0, op);
          for (const d of [0, 1, 2]) {
            for (const keepdim of [false, true]) {
              const y = x[op](d, keepdim);
              const r = reduceRef(xa, [d], keepdim, op === 'max' ? -Infinity : Infinity, fold);
              expect(y.shape).to.deep.equal(r.shape);
              expectClose(y, r.data, 0, 0, `${op}(${d})`);
            }
          }
          checkGrad((t) => t[op](), [x]);
          checkGrad((t) => t[op](1), [x]);
          checkGrad((t) => t[op](-1, true), [x]);
        }
      });
      it('max / min share the gradient between ties, propagate NaN', () => {
        const t = tensor(
          [
            [1, 3, 3],
            [2, 2, 0],
          ],
          { device, requiresGrad: true },
        );
        t.max(1).sum().backward();
        expectClose(t.grad!, [
          [0, 0.5, 0.5],
          [0.5, 0.5, 0],
        ]);
        expect(Number.isNaN(tensor([1, NaN, 3], { device }).max().item())).to.equal(true);
        expect(Number.isNaN(tensor([1, NaN, 3], { device }).min().item())).to.equal(true);
      });
      it('argmax / argmin: values, keepdim, first index on ties, flattened without dim', () => {
        const t = tensor(
          [
            [1, 5, 5],
            [7, 2, 7],
            [-1, -3, -3],
          ],
          { device },
        );
        expectClose(t.argmax(1), [1, 0, 0]);
        expectClose(t.argmin(1), [0, 1, 1]);
        expectClose(t.argmax(0), [1, 0, 1]);
        expectClose(t.argmin(0), [2, 2, 2]);
        expect(t.argmax(1, true).shape).to.deep.equal([3, 1]);
        expectClose(t.argmax(), [3]);
        expect(t.argmax().shape).to.deep.equal([]);
        expectClose(t.argmin(), [7]);
        // reference over the random input
        for (const d of [0, 1, 2]) {
          const am = reduceRef({ data: xa.data.map((_, i) => i), shape: xa.shape }, [d], false, -1, (acc, i) =>
            acc < 0 || xa.data[i] > xa.data[acc] ? i : acc,
          );
          const want = am.data.map((i) => [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4][d]);
          expectClose(x.argmax(d), want, 0, 0, `argmax(${d})`);
        }
      });
      it('reduce a strided view (transposed, sliced)', () => {
        const v = x.permute(2, 0, 1).slice(0, 1, 4, 2); // [2, 2, 3]
        const va = arr(v.contiguous());
        expectClose(v.sum(2), reduceRef(va, [2], false, 0, sumRef).data, 1e-5, 1e-5);
        expectClose(v.max(0), reduceRef(va, [0], false, -Infinity, Math.max).data, 0, 0);
        checkGrad((t) => t.permute(2, 0, 1).slice(0, 1, 4, 2).sum([0, 2]), [x]);
      });
      it('0-d tensors accept dim 0 / -1 (as PyTorch); empty tensors reduce to the identity', () => {
        const s = tensor(2, { device, requiresGrad: true });
        for (const y of [s.sum(0), s.mean(-1), s.max(0), s.min(0, true), s.softmax(0), s.logSoftmax(-1), ops.logsumexp(s, 0)])
          expect(y.shape).to.deep.equal([]);
        expect(s.sum(0).item()).to.equal(2);
        expect(s.argmax(0).item()).to.equal(0);
        expect(s.softmax(0).item()).to.equal(1);
        s.max(0).add(s.sum(0)).backward();
        expectClose(s.grad!, [2]);
        const z = tensor([], { device }).reshape(0, 3);
        expectClose(z.sum(), [0]);
        expectClose(z.sum(0), [0, 0, 0]);
        expect(z.sum(1).shape).to.deep.equal([0]);
        expect(Number.isNaN(z.mean().item())).to.equal(true);
        expect(z.add(1).shape).to.deep.equal([0, 3]);
      });
      it('reductions over more than one kernel loop holds (GL stops loops after ~65,535 iterations)', () => {
        const n = 70001;
        const v = new Float32Array(n).fill(1);
        v[n - 2] = 5; // the extreme values sit in the last chunk
        v[40000] = -3;
        const big = tensor(v, { device });
        expectClose(big.sum(), [n + 4 - 4], 0, 1e-6);
        expectClose(big.mean(), [(n + 4 - 4) / n], 1e-6, 1e-6);
        expect(big.max().item()).to.equal(5);
        expect(big.min().item()).to.equal(-3);
        expect(big.argmax().item()).to.equal(n - 2);
        expect(big.argmin().item()).to.equal(40000);
        const two = big.slice(0, 0, 70000).reshape(2, 35000).T; // reduce dim 0 of a transposed view: 35,000 rows
        expectClose(two.sum(0), [35000, 35000 - 1 - 3 - 1 + 5], 0, 1e-6);
        expectClose(two.argmin(0, true), [[0, 5000]]);
        expectClose(two.argmax(0), [0, 34999]);
        expectClose(tensor([1, 3, 3, 2], { device }).expand(20000, 4).reshape(-1).argmax(), [1]); // first index on ties across chunks
        const g = big.detach().requiresGrad_();
        g.max().backward();
        expect(g.grad!.sum().item()).to.equal(1);
      });
      it('errors: out-of-range dims, repeated dims, max of an empty dimension', () => {
        throwsWith(() => x.sum(3), 'sum', 'dim 3', '3 dims');
        throwsWith(() => x.sum([1, -2]), 'sum', 'repeat');
        throwsWith(() => ops.max(tensor([], { device })), 'max', 'empty');
      });

      describe('softmax family', () => {
        const s = seeded([3, 4], device, 33, -3, 3);
        const sa = arr(s);
        const softRef = (d: number) => {
          const m = reduceRef(sa, [d], true, -Infinity, Math.max);
          const e = sa.data.map((v, i) => Math.exp(v - m.data[d === 1 ? Math.floor(i / 4) : i % 4]));
          const z = reduceRef({ data: e, shape: sa.shape }, [d], true, 0, sumRef);
          return e.map((v, i) => v / z.data[d === 1 ? Math.floor(i / 4) : i % 4]);
        };
        it('softmax values (both dims), rows sum to 1, gradients', () => {
          for (const d of [0, 1]) expectClose(s.softmax(d), softRef(d), 1e-6, 1e-5, `softmax(${d})`);
          expectClose(s.softmax(-1).sum(-1), [1, 1, 1], 1e-5, 0);
          checkGrad((t) => t.softmax(-1), [s]);
          checkGrad((t) => t.softmax(0), [s]);
        });
        it('logSoftmax values and gradients', () => {
          for (const d of [0, 1]) expectClose(s.logSoftmax(d), softRef(d).map(Math.log), 1e-5, 1e-5, `logSoftmax(${d})`);
          checkGrad((t) => t.logSoftmax(-1), [s]);
          checkGrad((t) => t.logSoftmax(0), [s]);
        });
        it('logsumexp values, keepdim and gradients', () => {
          const r = reduceRef({ data: sa.data.map(Math.exp), shape: sa.shape }, [1], false, 0, sumRef, Math.log);
          expectClose(ops.logsumexp(s, 1), r.data, 1e-5, 1e-5);
          expect(ops.logsumexp(s, 1, true).shape).to.deep.equal([3, 1]);
          expect(ops.logsumexp(s, 0).shape).to.deep.equal([4]);
          checkGrad((t) => ops.logsumexp(t, 1), [s]);
          checkGrad((t) => ops.logsumexp(t, 0, true), [s]);
        });
        it('large logits do not overflow', () => {
          const big = tensor(
            [
              [1000, 1001, 1002],
              [-1000, -1000, -1000],
            ],
            { device },
          );
          expectClose(
            big.softmax(-1),
            [
              [0.09003057, 0.24472847, 0.66524096],
              [1 / 3, 1 / 3, 1 / 3],
            ],
            1e-6,
            1e-5,
          );
          expectClose(big.logSoftmax(-1), [[-2.40760596, -1.40760596, -0.40760596], Array(3).fill(-Math.log(3))], 1e-4, 1e-5);
          expectClose(ops.logsumexp(big, 1), [1002.40760596, -1000 + Math.log(3)], 1e-3, 1e-6);
        });
      });
    });
  }
});
