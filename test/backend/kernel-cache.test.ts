/** The compiled-kernel cache is bounded (LRU); evicted kernels are rebuilt and give the same results. */
import { expect } from 'chai';
import { arange, backendFor, setKernelCacheSize } from '../../src';
import { DEFAULT_KERNEL_CACHE } from '../../src/backend/kernel-cache';
import { testDevices } from '../helpers';

describe('backend: kernel cache', () => {
  afterEach(() => setKernelCacheSize(DEFAULT_KERNEL_CACHE));

  it('setKernelCacheSize refuses a non-positive or fractional size', () => {
    expect(() => setKernelCacheSize(0)).to.throw(/setKernelCacheSize: expected a positive integer/);
    expect(() => setKernelCacheSize(2.5)).to.throw(/setKernelCacheSize/);
  });

  for (const device of testDevices()) {
    it(`${device}: stays within its size; evicted kernels are rebuilt; results of evicted kernels stay readable`, () => {
      const backend = backendFor(device);
      const gpu = (backend as any).gpu;
      setKernelCacheSize(4);
      expect(backend.kernels.size).to.be.at.most(4);
      const xs = Array.from({ length: 12 }, (_, k) => arange(k + 1, undefined, 1, { device }));
      // one distinct kernel per length (gpu.js compiles per output size)
      const first = xs[0].add(10);
      const evictedBefore = backend.kernels.evicted;
      const ys = xs.map((x) => x.mul(3));
      expect(backend.kernels.size).to.be.at.most(4);
      expect(backend.kernels.evicted - evictedBefore).to.be.at.least(8);
      expect(gpu.kernels.length, "gpu.js's own kernel list is trimmed too").to.be.at.most(4);
      // made by kernels since evicted: still readable, and usable as inputs
      expect(Array.from(first.dataSync())).to.deep.equal([10]);
      ys.forEach((y, k) => expect(Array.from(y.dataSync())).to.deep.equal(Array.from({ length: k + 1 }, (_, i) => 3 * i)));
      const compiled = backend.stats.kernelsCompiled;
      expect(Array.from(xs[0].add(10).add(first).dataSync())).to.deep.equal([20]);
      expect(backend.stats.kernelsCompiled, 'the evicted kernels were compiled again').to.be.above(compiled);
      // and many more shapes never grow it
      for (let k = 13; k < 40; k++) arange(k, undefined, 1, { device }).mul(2).dispose();
      expect(backend.kernels.size).to.be.at.most(4);
      expect(gpu.kernels.length).to.be.at.most(4);
    });
  }
});
