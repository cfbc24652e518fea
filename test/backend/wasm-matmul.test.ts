/**
 * The direct WebAssembly matmul on webasm (src/backend/wasm/) against the gpu.js kernel it replaces (the
 * reference path, TSNN_WASM_MATMUL=gpujs) and a float64 JS product: random shapes with edges (M, N, K not
 * multiples of the 4x8 tile, 1xN, Nx1, K=1), transposed and strided operands, broadcast batches; the
 * backward through nn.Linear and conv2d; a compiled graph replaying it; the B panel cache across in-place
 * updates; the emitter, the features probe and the arena.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { nn, noGrad, ops, Tensor, tensor } from '../../src';
import { wasmFeatures } from '../../src/backend/wasm/features';
import { gemmEngine, MR, NR } from '../../src/backend/wasm/gemm';
import { WasmArena } from '../../src/backend/wasm/arena';
import { clearConvWeights } from '../../src/backend/wasm/conv-lowering';
import { Code, encodeModule } from '../../src/backend/wasm/emitter';
import { backendFor } from '../../src/backend/devices';
import { profile } from '../../src/backend/gpujs-backend';
import { directAvailable, withDirect } from './wasm-direct';

const available = directAvailable;

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

function rand(shape: number[], seed: number): Tensor {
  return tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  )
    .reshape(shape)
    .to('webasm');
}

/** float64 product of the f32 inputs, with the error bound K * 2^-23 * sum |a||b| per cell (batch broadcast). */
function reference(a: Tensor, b: Tensor): { value: Float64Array; bound: Float64Array } {
  const A = a.contiguous().dataSync();
  const B = b.contiguous().dataSync();
  const [M, K] = a.shape.slice(-2);
  const N = b.shape[b.shape.length - 1];
  const ab = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const nd = Math.max(ab.length, bb.length);
  const batch: number[] = [];
  for (let i = 0; i < nd; i++) {
    const x = ab[ab.length - nd + i] ?? 1;
    const y = bb[bb.length - nd + i] ?? 1;
    batch.push(Math.max(x, y));
  }
  const nb = batch.reduce((p, d) => p * d, 1);
  const off = (own: number[], idx: number[]) => {
    let o = 0;
    own.forEach((d, i) => (o = o * d + (d === 1 ? 0 : idx[nd - own.length + i])));
    return o;
  };
  const value = new Float64Array(nb * M * N);
  const bound = new Float64Array(nb * M * N);
  const idx = new Array(nd).fill(0);
  for (let z = 0; z < nb; z++) {
    const oa = off(ab, idx) * M * K;
    const ob = off(bb, idx) * K * N;
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        let abs = 0;
        for (let k = 0; k < K; k++) {
          const p = A[oa + m * K + k] * B[ob + k * N + n];
          s += p;
          abs += Math.abs(p);
        }
        value[(z * M + m) * N + n] = s;
        bound[(z * M + m) * N + n] = (K + 2) * 2 ** -23 * abs + 1e-30;
      }
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return { value, bound };
}

function expectWithin(got: Float32Array, ref: { value: Float64Array; bound: Float64Array }, what: string): void {
  expect(got.length, what).to.equal(ref.value.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - ref.value[i]);
    if (!(err <= ref.bound[i])) expect.fail(`${what}: cell ${i} is ${got[i]}, float64 gives ${ref.value[i]} (bound ${ref.bound[i]})`);
  }
}

function maxRelDiff(x: Float32Array, y: Float32Array, ref: { bound: Float64Array }): number {
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (2 * ref.bound[i]));
  return worst;
}

(available ? describe : describe.skip)('backend: direct WebAssembly matmul (webasm)', function () {
  this.timeout(300000);

  it('emits modules the runtime validates, and says whether relaxed SIMD is there', () => {
    const f = wasmFeatures();
    expect(f.simd).to.equal(true);
    expect(typeof f.relaxedSimd).to.equal('boolean');
    // a module using relaxed_madd validates exactly when the probe says so
    const c = new Code(['i32']);
    c.i32(0).simd('v128.load', 0).i32(0).simd('v128.load', 16).i32(0).simd('v128.load', 32).simd('f32x4.relaxed_madd').i32(0).simd('v128.store', 0);
    expect((globalThis as any).WebAssembly.validate(encodeModule([{ name: 'f', code: c }], { pages: 1 }))).to.equal(f.relaxedSimd);
    expect(MR * NR).to.equal(32);
  });

  it('matches the gpu.js kernel and a float64 product on random shapes, transposes and batches', () => {
    const dim = fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 6, max: 40 }), fc.constantFrom(1, 4, 7, 8, 9, 33));
    const bdim = fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 });
    fc.assert(
      fc.property(dim, dim, dim, bdim, bdim, fc.boolean(), fc.boolean(), fc.integer(), (M, K, N, ba, bb, ta, tb, seed) => {
        // same rank or broadcastable: trailing batch dims of b equal those of a, or 1
        const bbFixed = bb.map((d, i) => {
          const x = ba[ba.length - bb.length + i];
          return x === undefined || x === d || d === 1 || x === 1 ? d : 1;
        });
        const a = ta ? rand([...ba, K, M], seed).transpose(-1, -2) : rand([...ba, M, K], seed);
        const b = tb ? rand([...bbFixed, N, K], seed + 1).transpose(-1, -2) : rand([...bbFixed, K, N], seed + 1);
        const direct = withDirect(true, () => ops.matmul(a, b).dataSync().slice());
        const gpujs = withDirect(false, () => ops.matmul(a, b).dataSync().slice());
        const ref = reference(a, b);
        const what = `[${[...ba, M, K]}]${ta ? 'T' : ''} @ [${[...bbFixed, K, N]}]${tb ? 'T' : ''}`;
        expectWithin(direct, ref, `direct ${what}`);
        expectWithin(gpujs, ref, `gpu.js ${what}`);
        expect(maxRelDiff(direct, gpujs, ref), what).to.be.at.most(1);
      }),
      { numRuns: 60, seed: 12 },
    );
  });

  it('ran the direct kernel (not the gpu.js one) in the test above', () => {
    profile.on = true;
    profile.kernels.clear();
    try {
      withDirect(true, () => ops.matmul(rand([9, 13], 1), rand([13, 17], 2)).dataSync());
      expect([...profile.kernels.keys()].some((s) => s.includes('direct wasm gemm'))).to.equal(true);
      profile.kernels.clear();
      withDirect(false, () => ops.matmul(rand([9, 13], 1), rand([13, 17], 2)).dataSync());
      expect([...profile.kernels.keys()].some((s) => s.includes('direct wasm gemm'))).to.equal(false);
    } finally {
      profile.on = false;
    }
  });

  it('edge shapes: 1xN, Nx1, K=1, K=0, sizes around the tile and past the K block', () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 300, 1],
      [1, 64, 130],
      [130, 64, 1],
      [37, 1, 29],
      [3, 5, 7],
      [4, 8, 8],
      [5, 9, 9],
      [8, 513, 16],
      [17, 1100, 23],
      [64, 600, 30],
    ];
    for (const [M, K, N] of shapes) {
      const a = rand([M, K], M * 7 + K);
      const b = rand([K, N], N * 11 + K);
      expectWithin(
        withDirect(true, () => ops.matmul(a, b).dataSync().slice()),
        reference(a, b),
        `${M}x${K}x${N}`,
      );
    }
    const z = withDirect(true, () => ops.matmul(rand([3, 0], 1), rand([0, 5], 2)).dataSync());
    expect(Array.from(z)).to.deep.equal(new Array(15).fill(0));
  });

  it('a reduction longer than one gpu.js kernel may loop (K > 16384) in one direct product', () => {
    const a = rand([3, 20000], 5);
    const b = rand([20000, 9], 6);
    expectWithin(
      withDirect(true, () => ops.matmul(a, b).dataSync().slice()),
      reference(a, b),
      'K=20000',
    );
  });

  it('reuses packed weights until the weight changes in place', () => {
    const { panels } = gemmEngine();
    const w = rand([20, 12], 3); // nn.Linear's W [out, in]
    const x = rand([16, 12], 4);
    // packed on the first two calls (kept from the second: a training step's weights are read once), reused after
    const y1 = withDirect(true, () => ops.matmul(x, w.transpose(0, 1)).dataSync().slice());
    const misses = panels.stats.misses;
    withDirect(true, () => ops.matmul(x, w.transpose(0, 1)).dataSync());
    expect(panels.stats.misses).to.equal(misses + 1);
    const hits = panels.stats.hits;
    const y2 = withDirect(true, () => ops.matmul(x, w.transpose(0, 1)).dataSync().slice());
    expect(panels.stats.hits).to.equal(hits + 1);
    expect(Array.from(y2)).to.deep.equal(Array.from(y1));
    // a row-major B: read in place on first use, packed and kept from the second
    const r = rand([12, 20], 5);
    const z1 = withDirect(true, () => ops.matmul(x, r).dataSync().slice());
    withDirect(true, () => ops.matmul(x, r).dataSync());
    const rh = panels.stats.hits;
    const z3 = withDirect(true, () => ops.matmul(x, r).dataSync().slice());
    expect(panels.stats.hits).to.equal(rh + 1);
    expect(Array.from(z3)).to.deep.equal(Array.from(z1));
    w.mul_(2); // a new buffer: the old panels must not be used
    const y3 = withDirect(true, () => ops.matmul(x, w.transpose(0, 1)).dataSync().slice());
    for (let i = 0; i < y1.length; i++) expect(y3[i]).to.be.closeTo(2 * y1[i], 1e-5 * (1 + Math.abs(y1[i])));
  });

  it("nn.Linear forward and backward equal the gpu.js path's (bias added in the product's pass), 2-D and 3-D input", () => {
    for (const shape of [
      [10, 23],
      [3, 5, 23],
      [1, 23],
    ])
      linearCase(shape);
  });

  function linearCase(shape: number[]): void {
    const run = (direct: boolean) =>
      withDirect(direct, () => {
        const lin = new nn.Linear(23, 13).to('webasm');
        noGrad(() => {
          lin.weight.copy_(rand([13, 23], 8));
          lin.bias!.copy_(rand([13], 9));
        });
        const x = rand(shape, 10).requiresGrad_();
        const y = lin.forward(x);
        y.mul(y).sum().backward();
        return [y.dataSync().slice(), x.grad!.dataSync().slice(), lin.weight.grad!.dataSync().slice(), lin.bias!.grad!.dataSync().slice()];
      });
    const d = run(true);
    const g = run(false);
    d.forEach((v, i) => {
      for (let j = 0; j < v.length; j++) expect(v[j], `[${shape}] output ${i} cell ${j}`).to.be.closeTo(g[i][j], 1e-4 * (1 + Math.abs(g[i][j])));
    });
  }

  it("conv2d (im2col, with bias and groups) forward and backward equal the gpu.js path's", () => {
    const forced = process.env.TSNN_CONV;
    process.env.TSNN_CONV = 'im2col';
    try {
      convCases();
    } finally {
      if (forced === undefined) delete process.env.TSNN_CONV;
      else process.env.TSNN_CONV = forced;
    }
  });

  function convCases(): void {
    for (const groups of [1, 2]) {
      const run = (direct: boolean) =>
        withDirect(direct, () => {
          const x = rand([3, 4, 9, 7], 20).requiresGrad_();
          const w = rand([16, 4 / groups, 3, 3], 21).requiresGrad_();
          const b = rand([16], 22).requiresGrad_();
          const y = ops.conv2d(x, w, b, { padding: 1, groups });
          y.mul(y).sum().backward();
          return [y.dataSync().slice(), x.grad!.dataSync().slice(), w.grad!.dataSync().slice(), b.grad!.dataSync().slice()];
        });
      const d = run(true);
      const g = run(false);
      d.forEach((v, i) => {
        expect(v.length).to.equal(g[i].length);
        for (let j = 0; j < v.length; j++)
          expect(v[j], `groups ${groups} output ${i} cell ${j}`).to.be.closeTo(g[i][j], 1e-4 * (1 + Math.abs(g[i][j])));
      });
    }
  }

  it('a compiled model replays the direct matmul on new inputs', () => {
    withDirect(true, () => {
      const model = new nn.Sequential(new nn.Linear(9, 17), new nn.ReLU(), new nn.Linear(17, 5)).to('webasm');
      const compiled = nn.compile(model);
      for (let s = 0; s < 3; s++) {
        const x = rand([6, 9], 30 + s);
        const want = model.forward(x).dataSync().slice();
        const got = compiled(x).dataSync().slice();
        for (let i = 0; i < want.length; i++) expect(got[i]).to.be.closeTo(want[i], 1e-6 * (1 + Math.abs(want[i])));
      }
      expect(compiled.compileStats).to.include({ captures: 1, replays: 2 });
      // the replays ran the direct kernels (Linear: matmul with its bias in the same pass)
      profile.on = true;
      profile.kernels.clear();
      try {
        compiled(rand([6, 9], 40)).dataSync();
        expect([...profile.kernels.keys()].filter((k) => k.includes('direct wasm gemm')).length).to.equal(2);
      } finally {
        profile.on = false;
      }
    });
  });

  it('the arena reuses freed blocks instead of growing', () => {
    const arena = new WasmArena();
    const a = arena.alloc(100000);
    const b = arena.alloc(5000);
    const bytes = arena.bytes;
    arena.free(a);
    arena.free(b);
    for (let i = 0; i < 50; i++) {
      const x = arena.alloc(90000);
      const y = arena.alloc(4097);
      expect(x).to.equal(a);
      expect(y).to.equal(b);
      arena.free(y);
      arena.free(x);
    }
    expect(arena.bytes).to.equal(bytes);
    expect(arena.stats.inUse).to.equal(0);
    expect(() => arena.free(a)).to.throw(/freed twice/);
  });

  it('leaves no arena scratch in use after products (only cached panels)', () => {
    const { arena, panels } = gemmEngine();
    panels.clear();
    clearConvWeights(); // the conv tests above leave packed weights cached in the same arena
    for (let i = 0; i < 5; i++) withDirect(true, () => ops.matmul(rand([2, 7, 30], i), rand([2, 30, 11], i + 1)).dataSync());
    expect(arena.stats.inUse).to.equal(0);
    expect(backendFor('webasm').stats.kernelRuns).to.be.greaterThan(0);
  });
});
