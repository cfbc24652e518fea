/** indexSelect, gather, oneHot: values, scatter-add gradients with repeated indices, range errors. */
import { expect } from 'chai';
import { ops, tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, ravel, seeded, throwsWith, unravel } from './util';

describe('ops: indexing', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      const x = seeded([3, 4], device, 81);
      const xa = arr(x);
      const at = (i: number, j: number) => xa.data[i * 4 + j];

      it('indexSelect along each dim, with repeats; gradient adds repeated rows', () => {
        const idx = tensor([2, 0, 2], { device });
        const r0 = x.indexSelect(0, idx);
        expect(r0.shape).to.deep.equal([3, 4]);
        expectClose(
          r0,
          [2, 0, 2].flatMap((i) => [0, 1, 2, 3].map((j) => at(i, j))),
        );
        const r1 = x.indexSelect(1, idx);
        expect(r1.shape).to.deep.equal([3, 3]);
        expectClose(
          r1,
          [0, 1, 2].flatMap((i) => [2, 0, 2].map((j) => at(i, j))),
        );
        expectClose(x.indexSelect(-1, tensor([3], { device })), [at(0, 3), at(1, 3), at(2, 3)]);
        checkGrad((t) => t.indexSelect(0, idx), [x]);
        checkGrad((t) => t.indexSelect(1, idx), [x]);
        const xg = x.detach().requiresGrad_();
        xg.indexSelect(0, idx).sum().backward();
        expectClose(xg.grad!, [
          [1, 1, 1, 1],
          [0, 0, 0, 0],
          [2, 2, 2, 2],
        ]);
        // a strided source
        expectClose(x.T.indexSelect(0, tensor([1], { device })), [at(0, 1), at(1, 1), at(2, 1)]);
      });
      it('gather along each dim (index smaller than input), gradient scatter-adds', () => {
        const i0 = tensor(
          [
            [2, 0, 1, 2],
            [0, 0, 2, 1],
          ],
          { device },
        ); // [2, 4] along dim 0
        const g0 = x.gather(0, i0);
        expectClose(
          g0,
          [0, 1].flatMap((r) => [0, 1, 2, 3].map((c) => at(arr(i0).data[r * 4 + c], c))),
        );
        const i1 = tensor(
          [
            [3, 3],
            [0, 1],
            [2, 0],
          ],
          { device },
        ); // [3, 2] along dim 1
        const g1 = x.gather(1, i1);
        expectClose(
          g1,
          [0, 1, 2].flatMap((r) => [0, 1].map((c) => at(r, arr(i1).data[r * 2 + c]))),
        );
        checkGrad((t) => t.gather(0, i0), [x]);
        checkGrad((t) => t.gather(1, i1), [x]);
        const xg = x.detach().requiresGrad_();
        xg.gather(1, i1).sum().backward();
        expectClose(xg.grad!, [
          [0, 0, 0, 2],
          [1, 1, 0, 0],
          [1, 0, 1, 0],
        ]);
        // 3-D, middle dim
        const y = seeded([2, 3, 2], device, 5);
        const iy = tensor([[[2, 0]], [[1, 1]]], { device }); // [2, 1, 2]
        const ya = arr(y);
        expectClose(
          y.gather(1, iy),
          [0, 1, 2, 3].map((k) => {
            const [a, , c] = unravel(k, [2, 1, 2]);
            return ya.data[ravel([a, arr(iy).data[k], c], [2, 3, 2])];
          }),
        );
        checkGrad((t) => t.gather(1, iy), [y]);
      });
      it('scatter-add gradients over more indices than one kernel loop holds', () => {
        const n = 40000;
        const w = tensor(
          [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
          { device, requiresGrad: true },
        );
        w.indexSelect(
          0,
          tensor(
            Array.from({ length: n }, (_, i) => i % 3),
            { device },
          ),
        )
          .sum()
          .backward();
        expectClose(w.grad!, [
          [13334, 13334],
          [13333, 13333],
          [13333, 13333],
        ]);
        const v = tensor([[1, 2, 3]], { device, requiresGrad: true });
        v.gather(1, tensor([Array.from({ length: n }, (_, i) => (i * 7) % 3)], { device }))
          .sum()
          .backward();
        expectClose(v.grad!, [[13334, 13333, 13333]]);
      });
      it('oneHot', () => {
        const h = ops.oneHot(tensor([0, 2, 1, 2], { device }), 3);
        expect(h.shape).to.deep.equal([4, 3]);
        expectClose(h, [
          [1, 0, 0],
          [0, 0, 1],
          [0, 1, 0],
          [0, 0, 1],
        ]);
        expect(ops.oneHot(tensor([[1], [0]], { device }), 2).shape).to.deep.equal([2, 1, 2]);
      });
      it('errors: out-of-range, non-integer, negative and wrongly shaped indices', () => {
        // index values are checked on the host where they live there (cpu, webasm); GL clamps in the kernel
        if (device !== 'gpu') {
          throwsWith(() => x.indexSelect(0, tensor([3], { device })), 'indexSelect', 'index 3', 'size 3');
          throwsWith(() => x.gather(1, tensor([[4]], { device })), 'gather', 'index 4', 'size 4');
          throwsWith(() => x.indexSelect(0, tensor([0.5], { device })), 'indexSelect', '0.5');
          throwsWith(() => x.indexSelect(0, tensor([-1], { device })), 'indexSelect', 'negative');
          throwsWith(() => ops.oneHot(tensor([3], { device }), 3), 'oneHot', 'index 3');
        }
        throwsWith(() => x.indexSelect(0, tensor([[0]], { device })), 'indexSelect', '1 dims', '[1, 1]');
        throwsWith(() => x.gather(0, tensor([0], { device })), 'gather', '2 dims', '[1]');
        throwsWith(() => x.gather(0, tensor([[0, 0, 0, 0, 0]], { device })), 'gather', '[1, 5]', '[3, 4]');
      });
    });
  }
});
