/** matmul: every rank combination torch.matmul accepts, strided operands, gradients. */
import { expect } from 'chai';
import { Tensor, tensor, zeros } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, Arr, broadcastShape, numel, ravel, seeded, throwsWith, unravel } from './util';

/** torch.matmul on plain arrays. */
function matmulRef(a: Arr, b: Arr): Arr {
  const A = a.shape.length === 1 ? { data: a.data, shape: [1, a.shape[0]] } : a;
  const B = b.shape.length === 1 ? { data: b.data, shape: [b.shape[0], 1] } : b;
  const [M, K] = A.shape.slice(-2);
  const N = B.shape[B.shape.length - 1];
  const batch = broadcastShape(A.shape.slice(0, -2), B.shape.slice(0, -2));
  const out: number[] = [];
  for (let bi = 0; bi < numel(batch); bi++) {
    const bidx = unravel(bi, batch);
    const off = (t: Arr) => {
      const tb = t.shape.slice(0, -2);
      const lead = batch.length - tb.length;
      return (
        ravel(
          tb.map((d, i) => (d === 1 ? 0 : bidx[i + lead])),
          tb,
        ) *
        t.shape[t.shape.length - 2] *
        t.shape[t.shape.length - 1]
      );
    };
    const oa = off(A);
    const ob = off(B);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A.data[oa + m * K + k] * B.data[ob + k * N + n];
        out.push(acc);
      }
    }
  }
  let shape = [...batch, M, N];
  if (a.shape.length === 1) shape = shape.filter((_, i) => i !== shape.length - 2);
  if (b.shape.length === 1) shape = shape.slice(0, -1);
  return { data: out, shape };
}

describe('ops: matmul', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      const cases: [string, number[], number[]][] = [
        ['1-D · 1-D', [4], [4]],
        ['1-D @ 2-D', [3], [3, 2]],
        ['2-D @ 1-D', [2, 3], [3]],
        ['2-D @ 2-D', [2, 3], [3, 4]],
        ['batched', [2, 2, 3], [2, 3, 2]],
        ['broadcast batch (3-D @ 2-D)', [2, 2, 3], [3, 2]],
        ['broadcast batch (2-D @ 3-D)', [2, 3], [2, 3, 2]],
        ['broadcast batch of size 1', [2, 1, 2, 3], [3, 3, 2]],
        ['1-D @ batched', [3], [2, 3, 2]],
        ['batched @ 1-D', [2, 2, 3], [3]],
      ];
      cases.forEach(([name, sa, sb], k) => {
        it(`${name}: ${JSON.stringify(sa)} @ ${JSON.stringify(sb)}`, () => {
          const a = seeded(sa, device, 40 + k);
          const b = seeded(sb, device, 60 + k);
          const y = a.matmul(b);
          const r = matmulRef(arr(a), arr(b));
          expect(y.shape).to.deep.equal(r.shape);
          expectClose(y, r.data, 1e-5, 1e-5);
          checkGrad((x, z) => x.matmul(z), [a, b]);
        });
      });
      it('transposed and sliced views as operands (no copies needed)', () => {
        const a = seeded([3, 2], device, 1);
        const b = seeded([4, 3], device, 2);
        const y = a.T.matmul(b.T); // [2,3] @ [3,4]
        expectClose(y, matmulRef(arr(a.T.contiguous()), arr(b.T.contiguous())).data, 1e-5, 1e-5);
        const c = seeded([2, 5, 3], device, 3);
        const cv = c.slice(1, 1, 5, 2).transpose(1, 2); // [2, 3, 2], strided
        const yv = cv.matmul(a.T); // [2,3,2] @ [2,3]
        expectClose(yv, matmulRef(arr(cv.contiguous()), arr(a.T.contiguous())).data, 1e-5, 1e-5);
        checkGrad((x, z) => x.T.matmul(z.T), [a, b]);
        checkGrad((x, z) => x.slice(1, 1, 5, 2).transpose(1, 2).matmul(z.T), [c, a]);
        // the same storage on both sides
        checkGrad((x) => x.matmul(x.T), [a]);
      });
      it('gradient only for the operand that requires it', () => {
        const a = seeded([2, 3], device, 4, -2, 2, true);
        const b = seeded([3, 2], device, 5);
        a.matmul(b).sum().backward();
        expect(b.grad).to.equal(null);
        expectClose(a.grad!, matmulRef({ data: [1, 1, 1, 1], shape: [2, 2] }, { data: arr(b.T.contiguous()).data, shape: [2, 3] }).data, 1e-5, 1e-5);
      });
      it('mm is matmul; larger K accumulates accurately', () => {
        const a = seeded([3, 300], device, 6);
        const b = seeded([300, 2], device, 7);
        expectClose(a.mm(b), matmulRef(arr(a), arr(b)).data, 1e-3, 1e-4);
      });
      it('an empty inner dimension gives zeros; empty outer dimensions give empty results', () => {
        expectClose(zeros([2, 0], { device }).matmul(zeros([0, 3], { device })), [
          [0, 0, 0],
          [0, 0, 0],
        ]);
        expect(zeros([0, 2], { device }).matmul(seeded([2, 3], device, 1)).shape).to.deep.equal([0, 3]);
      });
      it('K longer than one kernel loop holds is split (GL stops loops after ~65,535 iterations)', () => {
        const K = 70000;
        const a = tensor(new Float32Array(2 * K).fill(0.5), { shape: [2, K], device, requiresGrad: true });
        const b = tensor(
          Float32Array.from({ length: K * 2 }, (_, i) => (i % 2 ? 1 : 2)),
          { shape: [K, 2], device },
        );
        expectClose(
          a.matmul(b),
          [
            [K, K / 2],
            [K, K / 2],
          ],
          0,
          1e-6,
        );
        a.matmul(b).sum().backward();
        expect(a.grad!.shape).to.deep.equal([2, K]);
        expect(a.grad!.max().item()).to.equal(3);
        expect(a.grad!.min().item()).to.equal(3);
      });
      it('errors name matmul and both shapes', () => {
        const a = seeded([2, 3], device, 1);
        throwsWith(() => a.matmul(seeded([4, 5], device, 1)), 'matmul', '[2, 3]', '[4, 5]');
        throwsWith(() => a.matmul(seeded([4], device, 1)), 'matmul', '[2, 3]');
        throwsWith(() => seeded([2, 2, 3], device, 1).matmul(seeded([3, 3, 2], device, 1)), 'matmul', '[2]', '[3]');
        throwsWith(() => a.matmul(seeded([], device, 1) as Tensor), 'matmul', 'at least 1 dimension');
      });
    });
  }
});
