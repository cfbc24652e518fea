/**
 * Every kernel form that can be split over threads (src/backend/kernel-threads.ts) gives the bits of the
 * whole kernel on one thread: flat kernels (cut along x), row-grid map kernels (cut along y) and the
 * im2col unfold grid (cut along z, or y for one image). Parts are one source compiled with their first
 * thread id as a constant (KernelBuilder.threadId); matmul's grid forms are checked in
 * test/perf/matmul-variants.test.ts. No timings here.
 */
import { expect } from 'chai';
import { Tensor, backendFor, manualSeed, noGrad, rand, F } from '../../src';
import { testDevices, withEnv } from '../helpers';

/** f's result on one thread and split over 3 threads (every big kernel split): same bits, and it did split. */
function sameBitsSplit(device: Tensor['device'], f: () => Tensor, extra: Record<string, string> = {}): void {
  noGrad(() => {
    const one = withEnv({ ...extra, TSNN_THREADS: '1' }, () => f().dataSync().slice());
    const stats = backendFor(device).threadStats;
    const before = stats.splitRuns;
    const split = withEnv({ ...extra, TSNN_THREADS: '3', TSNN_SPLIT: 'always' }, () => f().dataSync().slice());
    expect(stats.splitRuns - before, 'kernels that ran split').to.be.greaterThan(0);
    expect(Buffer.from(split.buffer).equals(Buffer.from(one.buffer)), 'split result: the single-thread bits').to.equal(true);
  });
}

describe('backend: split kernels give the single-thread bits', function () {
  this.timeout(120_000);
  for (const device of testDevices().filter((d) => d === 'webasm' || d === 'cpu')) {
    describe(device, () => {
      it('a flat map kernel (1-D, cut along x in whole SIMD quads)', () => {
        manualSeed(1);
        const x = rand([(1 << 21) + 13], { device });
        sameBitsSplit(device, () => x.mul(3).add(x.exp()));
      });

      it('a row-grid map kernel (2-D, cut along rows)', () => {
        manualSeed(2);
        const x = rand([1031, 2050], { device });
        const b = rand([2050], { device });
        sameBitsSplit(device, () => x.sub(b).tanh());
      });

      it('the im2col unfold of a convolution, several images and one', () => {
        manualSeed(3);
        const w = rand([8, 32, 3, 3], { device }).sub(0.5);
        const many = rand([8, 32, 32, 32], { device });
        const one = rand([1, 32, 96, 96], { device });
        sameBitsSplit(device, () => F.conv2d(many, w, null, { padding: 1 }), { TSNN_CONV: 'im2col' });
        sameBitsSplit(device, () => F.conv2d(one, w, null, { padding: 1 }), { TSNN_CONV: 'im2col' });
      });
    });
  }
});
