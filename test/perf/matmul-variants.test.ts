/**
 * matmul kernel variants (src/ops/matmul.ts): every variant a backend can run gives the naive kernel's
 * result on random shapes — tiles that do not divide M, N or K, tiny dims, broadcast batch dims,
 * transposed / sliced / expanded operands — and so do the epilogue form and threaded splits.
 * No timings here: bench/run.ts measures.
 */
import { expect } from 'chai';
import { Tensor, rand, manualSeed, noGrad, backendFor } from '../../src';
import { wasmMatmulConfig } from '../../src/backend/wasm/matmul-lowering';
import { matmulKernel, matmulVariant, MatmulEpilogue, MatmulVariant } from '../../src/ops/matmul';
import { ref, runKernel } from '../../src/ops/kernel';
import { broadcastShapes } from '../../src/tensor/shape';
import { splitKernel, SPLIT_WORK } from '../../src/backend/kernel-threads';
import { KernelBuilder } from '../../src/backend/kernel-builder';
import { expectClose, testDevices } from '../helpers';

/** Runs one variant of the matmul kernel on a and b (any views). */
function variantMatmul(a: Tensor, b: Tensor, variant: MatmulVariant, epilogue?: MatmulEpilogue): Tensor {
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.ndim - 1];
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const kb = matmulKernel(ref(a), ref(b), { batch, M, K, N, device: a.device }, { variant, epilogue });
  return runKernel(kb, kb.result, a.device);
}

/** Float64 reference on the host, through the tensors' own strided reads. */
function hostMatmul(a: Tensor, b: Tensor): Float64Array {
  const A = a.contiguous().dataSync();
  const B = b.contiguous().dataSync();
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.ndim - 1];
  const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = batch.reduce((p, d) => p * d, 1);
  const out = new Float64Array(nb * M * N);
  const offset = (t: Tensor, bi: number) => {
    const tb = t.shape.slice(0, -2);
    let idx = 0;
    let rest = bi;
    const digits: number[] = [];
    for (let d = batch.length - 1; d >= 0; d--) {
      digits[d] = rest % batch[d];
      rest = Math.floor(rest / batch[d]);
    }
    const lead = batch.length - tb.length;
    tb.forEach((d, i) => (idx = idx * d + (d === 1 ? 0 : digits[i + lead])));
    return idx * t.shape[t.ndim - 2] * t.shape[t.ndim - 1];
  };
  for (let bi = 0; bi < nb; bi++) {
    const oa = offset(a, bi);
    const ob = offset(b, bi);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += A[oa + m * K + k] * B[ob + k * N + n];
        out[(bi * M + m) * N + n] = acc;
      }
    }
  }
  return out;
}

interface Case {
  name: string;
  make: (device: Tensor['device']) => [Tensor, Tensor];
}

const r = (shape: number[], device: Tensor['device']) => rand(shape, { device }).sub(0.5);
const CASES: Case[] = [
  { name: '512x512 @ 512x512', make: (d) => [r([512, 512], d), r([512, 512], d)] },
  { name: 'MLP layer: [256,784] @ W^T (transposed view of [256,784])', make: (d) => [r([256, 784], d), r([256, 784], d).transpose()] },
  { name: 'weight grad: x^T (view) @ g', make: (d) => [r([64, 100], d).transpose(), r([64, 36], d)] },
  { name: 'batch-1 row: [1,784] @ [784,256]', make: (d) => [r([1, 784], d), r([784, 256], d)] },
  { name: 'M=2, M=3 (below a tile)', make: (d) => [r([3, 9], d), r([9, 5], d)] },
  { name: 'M, N, K not multiples of 4 (13x11 @ 11x7)', make: (d) => [r([13, 11], d), r([11, 7], d)] },
  { name: 'K < 8 (no unrolling), K = 1', make: (d) => [r([8, 1], d), r([1, 6], d)] },
  { name: 'K % 4 != 0 with unrolling (9x37 @ 37x10)', make: (d) => [r([9, 37], d), r([37, 10], d)] },
  { name: 'N = 1 (a column)', make: (d) => [r([12, 20], d), r([20, 1], d)] },
  { name: 'batched, M % 4 == 0', make: (d) => [r([3, 8, 5], d), r([3, 5, 6], d)] },
  { name: 'batched, M % 4 != 0', make: (d) => [r([2, 7, 5], d), r([2, 5, 9], d)] },
  { name: 'broadcast batch dims [2,1,4,6] @ [3,6,5]', make: (d) => [r([2, 1, 4, 6], d), r([3, 6, 5], d)] },
  { name: 'expanded (stride 0) batch operand', make: (d) => [r([4, 6], d).expand([3, 4, 6]), r([3, 6, 8], d)] },
  { name: 'sliced views with offsets', make: (d) => [r([10, 20], d).slice(0, 2, 10).slice(1, 3, 15), r([14, 9], d).slice(0, 2, 14)] },
  { name: 'permuted batched views', make: (d) => [r([5, 3, 8], d).permute(1, 0, 2), r([3, 8, 4], d).transpose(1, 2).transpose(1, 2)] },
];

describe('perf: matmul kernel variants', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      const tiles = backendFor(device).supportsTiles;
      const variants: MatmulVariant[] = tiles ? ['flat', 'rowvec', 'tiled4'] : ['flat']; // GL's 'quads': gl-resident.test.ts

      it(`picks ${tiles ? 'tiled4 for large M, rowvec for M < 4' : "'quads' when N % 4 == 0, else the flat kernel"} by shape and backend`, () => {
        const v = (M: number, batch: number[] = []) => matmulVariant({ batch, M, K: 64, N: 64, device });
        if (tiles) {
          expect(v(256)).to.equal('tiled4');
          expect(v(1)).to.equal('rowvec');
          expect(v(6, [3])).to.equal('rowvec');
          expect(v(8, [3])).to.equal('tiled4');
        } else {
          // GL: one thread writes a texel (4 output columns) where N allows it
          expect(v(256)).to.equal('quads');
          expect(matmulVariant({ batch: [], M: 256, K: 64, N: 10, device })).to.equal('flat');
        }
      });

      for (const c of CASES) {
        it(`${c.name}: every variant matches the naive kernel and a float64 reference`, () => {
          manualSeed(7);
          noGrad(() => {
            const [a, b] = c.make(device);
            const want = hostMatmul(a, b);
            const naive = variantMatmul(a, b, 'flat');
            const K = a.shape[a.ndim - 1];
            const tol = 2e-6 * K + 1e-5;
            expectClose(naive.dataSync(), Float32Array.from(want), tol, 1e-5, 'flat vs float64');
            for (const v of variants) {
              const got = variantMatmul(a, b, v);
              expect(got.shape).to.deep.equal(naive.shape);
              expectClose(got, naive, tol, 1e-5, `${v} vs flat`);
            }
          });
        });
      }

      // f32 everywhere on webasm and GL: the same bits; the cpu backend keeps f64 inside a kernel, so the
      // unfused form rounds once more there
      it('the epilogue form equals matmul followed by the elementwise ops', () => {
        manualSeed(3);
        noGrad(() => {
          const a = r([10, 12], device);
          const w = r([7, 12], device);
          const bias = r([7], device);
          for (const v of variants) {
            const fused = variantMatmul(a, w.transpose(), v, (acc, kb, out) => {
              const bv = kb.readAt(ref(bias), out);
              return `Math.max(${acc} + ${bv}, 0.0)`;
            });
            const plain = variantMatmul(a, w.transpose(), v).add(bias).relu();
            expectClose(fused, plain, device === 'cpu' ? 1e-6 : 0, device === 'cpu' ? 1e-6 : 0, `${v} epilogue`);
          }
        });
      });

      if (tiles) {
        it('a threaded split gives the single-thread bits', () => {
          manualSeed(5);
          const saved = process.env.TSNN_THREADS;
          // the gpu.js kernels' split (webasm's direct matmul runs on one thread: test/backend/wasm-matmul.test.ts)
          const direct = wasmMatmulConfig.enabled;
          wasmMatmulConfig.enabled = false;
          try {
            noGrad(() => {
              const a = r([300, 130], device);
              const b = r([130, 256], device);
              const bat = r([2, 64, 160], device);
              const bb = r([2, 160, 520], device);
              process.env.TSNN_THREADS = '1';
              const one = [
                a.matmul(b).dataSync(),
                bat.matmul(bb).dataSync(),
                variantMatmul(a, b, 'rowvec').dataSync(),
                variantMatmul(a, b, 'flat').dataSync(),
              ];
              process.env.TSNN_THREADS = '2';
              const before = backendFor(device).threadStats.splitRuns;
              const two = [
                a.matmul(b).dataSync(),
                bat.matmul(bb).dataSync(),
                variantMatmul(a, b, 'rowvec').dataSync(),
                variantMatmul(a, b, 'flat').dataSync(),
              ];
              expect(backendFor(device).threadStats.splitRuns - before).to.equal(4);
              two.forEach((t, k) => expectClose(t, one[k], 0, 0, `case ${k}`));
            });
          } finally {
            wasmMatmulConfig.enabled = direct;
            if (saved === undefined) delete process.env.TSNN_THREADS;
            else process.env.TSNN_THREADS = saved;
          }
        });
      }
    });
  }

  describe('splitKernel (how a kernel is cut into thread parts)', () => {
    const spec = (grid: number[] | undefined, outSize: number, work: number, rows4 = false) => {
      const kb = new KernelBuilder([outSize], grid ? { grid, rows4 } : undefined);
      kb.work = work;
      return kb.build(grid ? `${kb.threadId('y')} + this.thread.x` : 'i');
    };
    it('leaves small kernels whole', () => {
      expect(splitKernel(spec([64, 16], 1024, 64), 2)).to.equal(null);
      expect(splitKernel(spec(undefined, 1 << 20, 1), 4)).to.equal(null);
    });
    it('cuts rows4 grids along y, covering every output cell once', () => {
      const s = spec([256, 75], 256 * 299, 1 << 10, true);
      const parts = splitKernel(s, 3)!;
      expect(parts.length).to.equal(3);
      expect(parts.reduce((n, p) => n + p.size, 0)).to.equal(s.outSize);
      parts.forEach((p, k) => {
        if (k > 0) expect(p.offset).to.equal(parts[k - 1].offset + parts[k - 1].size);
        if (k > 0) expect(p.base).to.equal(parts[k - 1].base + parts[k - 1].grid[1]);
        expect(p.offset).to.equal(p.base * 256 * 4);
      });
      // one source for every part: ids along y are offset by the part's base, a compile-time constant
      expect(s.partAxis).to.equal(1);
      expect(s.source).to.contain('(this.thread.y + this.constants.partBase)');
    });
    it('cuts flat kernels along x in whole SIMD quads', () => {
      const s = spec(undefined, 1_000_001, SPLIT_WORK);
      const parts = splitKernel(s, 2)!;
      expect(parts[1].offset % 4).to.equal(0);
      expect(parts[1].base).to.equal(parts[1].offset);
      expect(s.source).to.contain('const i = (this.thread.x + this.constants.partBase);');
      expect(parts[0].size + parts[1].size).to.equal(s.outSize);
    });
  });
});
