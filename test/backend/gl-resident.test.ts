/**
 * The `gpu` device keeps tensors on the GPU: 4 values per texel, a host array uploaded once, results read
 * back only when asked for, and the tiled ('quads') matmul reading texels whole. Values are checked against
 * a plain JavaScript reference and the cpu device; the counts against the backend's own statistics.
 */
import { expect } from 'chai';
import { Tensor, manualSeed, nn, noGrad, optim, rand, tensor, F } from '../../src';
import { backendFor } from '../../src/backend/devices';
import { matmulVariant } from '../../src/ops/matmul';
import { expectClose, testDevices } from '../helpers';

/** a [M, K] @ b [K, N] on plain row-major arrays, in float64 */
function matmulRef(a: Float32Array, b: Float32Array, M: number, K: number, N: number): number[] {
  const out: number[] = [];
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a[m * K + k] * b[k * N + n];
      out.push(acc);
    }
  return out;
}

(testDevices().includes('gpu') ? describe : describe.skip)('gpu device: resident textures, quads matmul', () => {
  const gl = {
    get stats() {
      return backendFor('gpu').stats;
    },
  };

  describe('matmul variants', () => {
    // [name, M, K, N, how B is made]: row-major B (texel rows), a transposed view (texel columns, like
    // nn.Linear's W^T), a sliced B whose offset is not a multiple of 4 (scalar reads), K % 4 != 0 (tail loop)
    const cases: [string, number, number, number, 'rows' | 'cols' | 'offset'][] = [
      ['row-major B, K % 4 == 0', 9, 16, 12, 'rows'],
      ['transposed B (W^T)', 7, 20, 8, 'cols'],
      ['B at an unaligned offset', 5, 12, 8, 'offset'],
      ['K % 4 != 0 (tail)', 6, 11, 4, 'rows'],
      ['K < 4', 3, 2, 8, 'cols'],
      ['M = 1', 1, 33, 16, 'rows'],
    ];
    for (const [name, M, K, N, how] of cases) {
      it(`${name}: ${M}x${K} @ ${K}x${N} runs 'quads' and matches the reference and cpu`, () => {
        manualSeed(M * 100 + K);
        const a0 = rand([M, K]).sub(0.5);
        const b0 = how === 'cols' ? rand([N, K]).sub(0.5) : how === 'offset' ? rand([K * N + 1]).sub(0.5) : rand([K, N]).sub(0.5);
        // the views are made on each device (moving a view copies it contiguous)
        const view = (t: Tensor) => (how === 'cols' ? t.transpose(0, 1) : how === 'offset' ? t.slice(0, 1).reshape([K, N]) : t);
        expect(matmulVariant({ batch: [], M, K, N, device: 'gpu' })).to.equal('quads');
        const want = matmulRef(a0.dataSync(), view(b0).contiguous().dataSync(), M, K, N);
        const got = a0.to('gpu').matmul(view(b0.to('gpu')));
        expectClose(got, want, 1e-5, 1e-5);
        expectClose(got, a0.to('cpu').matmul(view(b0.to('cpu'))), 1e-5, 1e-5);
      });
    }

    it('batched with a broadcast operand, and gradients, equal the cpu device', () => {
      manualSeed(7);
      const a = rand([3, 5, 8]).sub(0.5);
      const b = rand([8, 12]).sub(0.5);
      const g = rand([3, 5, 12]);
      const grads = (device: 'cpu' | 'gpu') => {
        const x = a.to(device).detach().requiresGrad_();
        const w = b.to(device).detach().requiresGrad_();
        const y = x.matmul(w);
        y.backward(g.to(device));
        return [y, x.grad!, w.grad!];
      };
      const [ycpu, gxcpu, gwcpu] = grads('cpu');
      const [ygl, gxgl, gwgl] = grads('gpu');
      expectClose(ygl, ycpu, 1e-5);
      expectClose(gxgl, gxcpu, 1e-5);
      expectClose(gwgl, gwcpu, 1e-5);
    });

    it('a quads result feeds other kernels as a flat tensor (views, elementwise, another matmul)', () => {
      manualSeed(3);
      const a = rand([6, 8]);
      const b = rand([8, 12]);
      const chain = (x: Tensor, y: Tensor) =>
        x
          .matmul(y)
          .relu()
          .add(1)
          .transpose(0, 1)
          .slice(0, 2, 10)
          .matmul(x.slice(1, 0, 4));
      expectClose(chain(a.to('gpu'), b.to('gpu')), chain(a.to('cpu'), b.to('cpu')), 1e-4, 1e-5);
    });

    it("TSNN_MATMUL=flat forces GL's one-thread-per-cell kernel; both give the same values", () => {
      manualSeed(4);
      const a = rand([10, 24], { device: 'gpu' });
      const b = rand([24, 16], { device: 'gpu' });
      const quads = a.matmul(b).dataSync();
      process.env.TSNN_MATMUL = 'flat';
      try {
        expect(matmulVariant({ batch: [], M: 10, K: 24, N: 16, device: 'gpu' })).to.equal('flat');
        expectClose(a.matmul(b), quads, 1e-5);
      } finally {
        delete process.env.TSNN_MATMUL;
      }
    });
  });

  describe('residency', () => {
    it('a host tensor is uploaded once however many kernels read it, and reading it back is free', () => {
      const x = tensor([1, 2, 3, 4, 5], { device: 'gpu' });
      const up0 = gl.stats.uploads;
      const rb0 = gl.stats.readbacks;
      const y = x.mul(2).add(x).sub(x.neg());
      expect(Array.from(y.dataSync())).to.deep.equal([4, 8, 12, 16, 20]);
      expect(gl.stats.uploads - up0).to.equal(1);
      expect(Array.from(x.dataSync())).to.deep.equal([1, 2, 3, 4, 5]);
      // y read back once; x's values were known on the host
      expect(gl.stats.readbacks - rb0).to.equal(1);
      void y.dataSync();
      void y.toArray();
      expect(gl.stats.readbacks - rb0).to.equal(1);
    });

    it('an SGD training step uploads neither data nor weights after the first and reads back only the loss', () => {
      manualSeed(0);
      const net = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4)).to('gpu');
      const x = rand([16, 12], { device: 'gpu' });
      const target = tensor(
        Array.from({ length: 16 }, (_, i) => i % 4),
        { device: 'gpu' },
      );
      const opt = optim.SGD(net.parameters(), { lr: 0.1 });
      const step = () => {
        opt.zeroGrad();
        const loss = F.crossEntropy(net(x), target);
        loss.backward();
        opt.step();
        return loss.item();
      };
      const first = step();
      const up0 = gl.stats.uploads;
      const rb0 = gl.stats.readbacks;
      let last = first;
      for (let i = 0; i < 3; i++) last = step();
      // at most the backward's seed (a one-element ones tensor made on the host) per step; x, the targets
      // and the weights stay on the GPU (before residency: x alone was uploaded twice a step)
      expect(gl.stats.uploads - up0).to.be.at.most(3);
      expect(gl.stats.readbacks - rb0).to.equal(3);
      expect(last).to.be.lessThan(first);
    });

    it('a class target uploaded from the host is range-checked without a read-back (clear error)', () => {
      const logits = rand([2, 3], { device: 'gpu' });
      const bad = tensor([0, 5], { device: 'gpu' });
      const rb0 = gl.stats.readbacks;
      expect(() => F.crossEntropy(logits, bad)).to.throw(/5/);
      expect(gl.stats.readbacks).to.equal(rb0);
    });

    it('disposing a tensor frees its texture and its texel view', () => {
      const a = rand([8, 8], { device: 'gpu' });
      const b = rand([8, 8], { device: 'gpu' });
      const live0 = gl.stats.live;
      const y = noGrad(() => a.matmul(b));
      expect(gl.stats.live).to.equal(live0 + 1);
      const bufA = a.storage.buffer;
      expect(bufA.gl?.quads, 'A was read a texel at a time').to.not.equal(null);
      y.dispose();
      a.dispose();
      expect(gl.stats.live).to.equal(live0 - 1);
      expect(bufA.gl).to.equal(null);
    });
  });
});
