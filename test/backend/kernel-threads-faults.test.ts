/**
 * Split kernels (src/backend/kernel-threads.ts, worker-pool.ts) when a part fails: a worker that throws,
 * exits, is terminated mid-kernel or hangs, and the calling thread's own part throwing. Each must fail
 * that op with an error that says what happened, soon (not after a 120 s wait), and leave the pool
 * usable: the next kernels run split again and give exactly the single-thread bits (before the fix, the
 * kernel after a failed calling-thread part returned half its cells from nowhere).
 * Faults come from the test-only hook in src/backend/kernel-faults.ts.
 */
import { expect } from 'chai';
import { Tensor, backendFor, manualSeed, noGrad, rand } from '../../src';
import { injectKernelFault, KernelFault } from '../../src/backend/kernel-faults';
import { HANG_FACTOR, HANG_FLOOR_MS } from '../../src/backend/worker-pool';
import { testDevices, withEnv } from '../helpers';

/** How many cells of `actual` differ in any bit from `expected`. */
function wrongCells(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).to.equal(expected.length);
  const x = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const y = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let n = 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) n++;
  return n;
}

describe('backend: split kernels when a thread fails', function () {
  this.timeout(60_000);
  for (const device of testDevices().filter((d) => d === 'webasm' || d === 'cpu')) {
    describe(device, () => {
      // 3 threads: parts 1 and 2 on two workers, so one worker fails while the other succeeds
      // matmul on the gpu.js kernel: the direct WebAssembly one does not split over the pool
      const threaded = { TSNN_THREADS: '3', TSNN_SPLIT: 'always', TSNN_WASM_MATMUL: 'gpujs' };
      let a: Tensor, b: Tensor, c: Tensor, d: Tensor;
      let expectedAB: Float32Array, expectedCD: Float32Array;
      let wholeMs = 0;

      before(() => {
        manualSeed(11);
        // big enough on webasm that a worker's part is still running when the next op starts (the old
        // failure needs that); smaller on cpu, whose JS kernels are ~10x slower
        const [M, K, N] = device === 'webasm' ? [512, 512, 512] : [256, 300, 256];
        a = rand([M, K], { device });
        b = rand([K, N], { device });
        c = rand([2, 128, 256], { device });
        d = rand([2, 256, 160], { device });
        noGrad(() =>
          withEnv({ TSNN_THREADS: '1', TSNN_WASM_MATMUL: 'gpujs' }, () => {
            const t0 = performance.now();
            expectedAB = a.matmul(b).dataSync();
            wholeMs = performance.now() - t0;
            expectedCD = c.matmul(d).dataSync();
          }),
        );
        // the workers start and compile their parts here, outside the timed faults
        checkNextKernels();
      });

      /** The next kernels (two shapes) run split and give the single-thread bits. */
      function checkNextKernels(): void {
        noGrad(() =>
          withEnv(threaded, () => {
            const stats = backendFor(device).threadStats;
            const before = stats.splitRuns;
            // copied as soon as the op returns: a part still being written after that must not go unseen
            const ab = a.matmul(b).dataSync().slice();
            const cd = c.matmul(d).dataSync().slice();
            expect(stats.splitRuns - before, 'both kernels ran split').to.equal(2);
            expect(wrongCells(ab, expectedAB), 'a @ b after the fault: cells that differ from the single-thread bits').to.equal(0);
            expect(wrongCells(cd, expectedCD), 'c @ d after the fault: cells that differ from the single-thread bits').to.equal(0);
          }),
        );
      }

      /** Runs a @ b with `fault` armed: it must throw an error matching `message` within `limitMs`. */
      function expectFailure(fault: KernelFault, message: RegExp, limitMs: number): void {
        injectKernelFault(fault);
        let error: unknown = null;
        const t0 = performance.now();
        try {
          noGrad(() => withEnv(threaded, () => a.matmul(b).dataSync()));
        } catch (e) {
          error = e;
        } finally {
          injectKernelFault(null);
        }
        const ms = performance.now() - t0;
        expect(error, 'the op fails').to.be.instanceOf(Error);
        expect((error as Error).message).to.match(message);
        expect(ms, 'time to fail (ms)').to.be.below(limitMs);
      }

      it("the calling thread's own part throws: that error, and the next kernels are exact", () => {
        expectFailure({ where: 'main' }, /injected fault in the calling thread's part/, 1000 + 10 * wholeMs);
        checkNextKernels();
      });

      it('a worker throws: a clear error naming the worker, the worker replaced, the next kernels exact', () => {
        expectFailure(
          { where: 'worker', part: 2, kind: 'throw' },
          /worker thread 2 of the \w+ backend threw: Error: injected fault.*the worker was replaced/,
          1000 + 10 * wholeMs,
        );
        checkNextKernels();
      });

      it('a worker thread exits mid-kernel: a clear error within a second, the next kernels exact', () => {
        expectFailure({ where: 'worker', part: 1, kind: 'exit' }, /worker thread 1 of the \w+ backend died/, 1000 + 10 * wholeMs);
        checkNextKernels();
      });

      it('a worker is terminated while its part runs: a clear error within a second, the next kernels exact', () => {
        expectFailure({ where: 'worker', part: 2, kind: 'terminate' }, /worker thread 2 of the \w+ backend died/, 1000 + 10 * wholeMs);
        checkNextKernels();
      });

      it("a worker hangs: it fails after the hang deadline (a multiple of the calling thread's part, at least a second), the next kernels exact", () => {
        expectFailure(
          { where: 'worker', part: 1, kind: 'hang' },
          /worker thread 1 of the \w+ backend hung/,
          Math.max(HANG_FLOOR_MS, HANG_FACTOR * wholeMs) + 1000,
        );
        checkNextKernels();
      });
    });
  }
});
