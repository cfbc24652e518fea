/**
 * The implicit-GEMM conv2d on webasm (src/backend/wasm/conv-lowering.ts) against a float64 JS convolution
 * (forward, grad input, grad weight, grad bias) and against the gpu.js reference path (wasmConv: false):
 * random shapes with stride, padding ('same' too), dilation, groups, 1x1, 7x7, batch 1, odd sizes,
 * strided (non-contiguous) inputs and output gradients; a compiled graph replaying it; the switch.
 */
import { expect } from 'chai';
import { nn, ops, Tensor, tensor, setBackendOptions, tidy } from '../../src';
import { outPoolStats } from '../../src/backend/wasm/out-pool';
import { profile } from '../../src/backend/gpujs-backend';
import type { Conv2dOptions } from '../../src/ops/conv';
import { directAvailable } from './wasm-direct';

const available = directAvailable;

/** Runs f with conv2d forced onto the implicit GEMM (true) or with the direct wasm conv switched off (false). */
function withImplicit<T>(on: boolean, f: () => T): T {
  setBackendOptions(on ? { conv: 'implicit', wasmConv: true } : { conv: undefined, wasmConv: false });
  try {
    return f();
  } finally {
    setBackendOptions({ conv: undefined, wasmConv: undefined });
  }
}

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

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const rand = (shape: number[], seed: number, requiresGrad = false) => tensor(values(numel(shape), seed), { shape, device: 'webasm', requiresGrad });

interface Case {
  x: number[];
  w: number[];
  bias: boolean;
  opts: { stride?: [number, number]; padding?: [number, number] | 'same'; dilation?: [number, number]; groups?: number };
  /** x given as a permuted (non-contiguous) view */
  stridedX?: boolean;
}

/** float64 forward and gradients (gy given) with per-cell error bounds n * 2^-23 * sum |a||b| (n: terms). */
function reference(c: Case, X: Float32Array, Wt: Float32Array, Bv: Float32Array | null, GY: Float32Array, OH: number, OW: number) {
  const [N, C, H, W] = c.x;
  const [O, Cg, kH, kW] = c.w;
  const G = c.opts.groups ?? 1;
  const Og = O / G;
  const [sh, sw] = c.opts.stride ?? [1, 1];
  const [dh, dw] = c.opts.dilation ?? [1, 1];
  let ph: number, pw: number;
  if (c.opts.padding === 'same') [ph, pw] = [Math.floor((dh * (kH - 1)) / 2), Math.floor((dw * (kW - 1)) / 2)];
  else [ph, pw] = c.opts.padding ?? [0, 0];
  const y = new Float64Array(N * O * OH * OW);
  const yb = new Float64Array(y.length);
  const gx = new Float64Array(N * C * H * W);
  const gxb = new Float64Array(gx.length);
  const gw = new Float64Array(O * Cg * kH * kW);
  const gwb = new Float64Array(gw.length);
  const gb = new Float64Array(O);
  const u = 2 ** -23;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          const yi = ((n * O + o) * OH + oh) * OW + ow;
          let acc = Bv ? Bv[o] : 0;
          let mag = Math.abs(acc);
          const g = GY[yi];
          gb[o] += g;
          for (let cl = 0; cl < Cg; cl++)
            for (let kh = 0; kh < kH; kh++)
              for (let kw = 0; kw < kW; kw++) {
                const ih = oh * sh - ph + kh * dh;
                const iw = ow * sw - pw + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const xi = ((n * C + grp * Cg + cl) * H + ih) * W + iw;
                const wi = ((o * Cg + cl) * kH + kh) * kW + kw;
                acc += Wt[wi] * X[xi];
                mag += Math.abs(Wt[wi] * X[xi]);
                gx[xi] += Wt[wi] * g;
                gxb[xi] += Math.abs(Wt[wi] * g);
                gw[wi] += X[xi] * g;
                gwb[wi] += Math.abs(X[xi] * g);
              }
          y[yi] = acc;
          yb[yi] = mag;
        }
    }
  // terms per sum: taps for y, the reduction lengths for the gradients
  const bound = (b: Float64Array, terms: number) => b.map((v) => (terms + 2) * u * v + 1e-6);
  return {
    y,
    yBound: bound(yb, Cg * kH * kW),
    gx,
    gxBound: bound(gxb, Og * kH * kW),
    gw,
    gwBound: bound(gwb, N * OH * OW),
    gb,
  };
}

function expectWithin(got: Float32Array, want: Float64Array, bound: Float64Array, what: string): void {
  expect(got.length, `${what} length`).to.equal(want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= bound[i])) expect.fail(`${what}: cell ${i} is ${got[i]}, float64 ${want[i]} (error ${err} > bound ${bound[i]})`);
  }
}

/** Runs conv2d forward + backward with gy; returns the values read back. */
function runCase(c: Case, seed: number) {
  const xBase = c.stridedX ? rand([c.x[0], c.x[2], c.x[3], c.x[1]], seed, true) : rand(c.x, seed, true);
  const x = c.stridedX ? xBase.permute([0, 3, 1, 2]) : xBase;
  const w = rand(c.w, seed + 1, true);
  const b = c.bias ? rand([c.w[0]], seed + 2, true) : null;
  const y = ops.conv2d(x, w, b, c.opts as Conv2dOptions);
  // gy as a transposed view for odd seeds (the backward reads a non-contiguous gradient), else contiguous
  const [N, O, OH, OW] = y.shape;
  const gy = seed % 2 ? rand([N, O, OW, OH], seed + 3).transpose(2, 3) : rand([N, O, OH, OW], seed + 3);
  y.mul(gy).sum().backward();
  const out = {
    X: x.contiguous().dataSync(),
    W: w.dataSync(),
    B: b ? b.dataSync() : null,
    GY: gy.contiguous().dataSync(),
    y: y.dataSync(),
    gx: xBase
      .grad!.permute(c.stridedX ? [0, 3, 1, 2] : [0, 1, 2, 3])
      .contiguous()
      .dataSync(),
    gw: w.grad!.dataSync(),
    gb: b ? b.grad!.dataSync() : null,
    OH,
    OW,
  };
  return out;
}

const fixed: Case[] = [
  { x: [2, 3, 7, 6], w: [4, 3, 3, 3], bias: true, opts: { padding: [1, 1] } },
  { x: [1, 4, 9, 9], w: [5, 4, 3, 3], bias: true, opts: { stride: [2, 2], padding: [1, 1] } },
  { x: [2, 2, 8, 7], w: [3, 2, 3, 2], bias: false, opts: { dilation: [2, 2], padding: [2, 1] } },
  { x: [1, 8, 6, 6], w: [8, 2, 3, 3], bias: true, opts: { groups: 4, stride: [2, 1], padding: [0, 1] } },
  { x: [3, 5, 5, 5], w: [6, 5, 1, 1], bias: true, opts: {} },
  { x: [1, 3, 17, 13], w: [7, 3, 7, 7], bias: true, opts: { stride: [2, 2], padding: [3, 3] } },
  { x: [2, 4, 5, 6], w: [4, 4, 1, 4], bias: true, opts: { padding: 'same' } },
  { x: [1, 2, 11, 11], w: [4, 2, 3, 3], bias: false, opts: { stride: [3, 3], dilation: [1, 2], padding: [2, 2] } },
  { x: [2, 6, 9, 10], w: [9, 6, 3, 3], bias: true, opts: { padding: [1, 1] }, stridedX: true },
  // K past the forward's K block (512 taps) and Og not a multiple of the 4-row tile
  { x: [1, 60, 5, 5], w: [6, 60, 3, 3], bias: true, opts: { padding: [1, 1] } },
  // images in chunks (4 of ~16K floats fit the forward's chunk): 5 images = a chunk of 4 and 1
  { x: [5, 8, 30, 30], w: [8, 8, 3, 3], bias: true, opts: { padding: [1, 1] } },
  // a 1x1 with stride 2 (ResNet's downsampling shortcut), odd channel counts
  { x: [2, 7, 9, 9], w: [5, 7, 1, 1], bias: false, opts: { stride: [2, 2] } },
];

/** Random cases: kernel 1..7, stride 1..3, dilation 1..2, padding up to the kernel's reach, groups 1..3. */
function randomCases(count: number, seed: number): Case[] {
  let s = seed;
  const r = (lo: number, hi: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return lo + ((s >>> 16) % (hi - lo + 1));
  };
  const out: Case[] = [];
  while (out.length < count) {
    const G = r(1, 3);
    const Cg = r(1, 4);
    const Og = r(2, 6);
    const kH = r(1, 7);
    const kW = r(1, 5);
    const dh = r(1, 2);
    const dw = r(1, 2);
    const ph = r(0, Math.min(3, dh * (kH - 1)));
    const pw = r(0, Math.min(3, dw * (kW - 1)));
    const H = r(Math.max(1, dh * (kH - 1) + 1 - 2 * ph), 13);
    const W = r(Math.max(1, dw * (kW - 1) + 1 - 2 * pw), 13);
    out.push({
      x: [r(1, 3), G * Cg, H, W],
      w: [G * Og, Cg, kH, kW],
      bias: r(0, 1) === 1,
      opts: { stride: [r(1, 3), r(1, 3)], padding: [ph, pw], dilation: [dh, dw], groups: G },
      stridedX: r(0, 3) === 0,
    });
  }
  return out;
}

(available ? describe : describe.skip)('implicit-GEMM conv2d on webasm (src/backend/wasm/conv-lowering.ts)', function () {
  this.timeout(120000);

  const all = [...fixed, ...randomCases(24, 7)];
  all.forEach((c, i) => {
    it(`matches float64 and the gpu.js path: x [${c.x}] w [${c.w}] ${JSON.stringify(c.opts)}${c.stridedX ? ' strided x' : ''}`, () => {
      const got = withImplicit(true, () => runCase(c, 100 + i));
      const ref = reference(c, got.X, got.W, got.B, got.GY, got.OH, got.OW);
      expectWithin(got.y, ref.y, ref.yBound, 'output');
      expectWithin(got.gx, ref.gx, ref.gxBound, 'grad input');
      expectWithin(got.gw, ref.gw, ref.gwBound, 'grad weight');
      if (got.gb) for (let o = 0; o < got.gb.length; o++) expect(got.gb[o]).to.be.closeTo(ref.gb[o], 1e-4 * (1 + Math.abs(ref.gb[o])));
      const gpujs = withImplicit(false, () => runCase(c, 100 + i));
      for (const k of ['y', 'gx', 'gw'] as const) {
        const a = got[k];
        const b = gpujs[k];
        for (let j = 0; j < a.length; j++) expect(a[j], `${k} cell ${j} vs gpu.js`).to.be.closeTo(b[j], 2e-5 * (1 + Math.abs(b[j])));
      }
    });
  });

  it('ran the implicit kernels (forward, grad input, grad weight), and not with wasmConv: false', () => {
    profile.on = true;
    profile.kernels.clear();
    try {
      withImplicit(true, () => runCase(fixed[1], 1));
      const names = [...profile.kernels.keys()].filter((k) => k.includes('direct wasm conv'));
      expect(names.some((k) => k.includes('forward'))).to.equal(true);
      expect(names.some((k) => k.includes('grad input'))).to.equal(true);
      expect(names.some((k) => k.includes('grad weight'))).to.equal(true);
      profile.kernels.clear();
      withImplicit(false, () => runCase(fixed[1], 1));
      expect([...profile.kernels.keys()].some((k) => k.includes('direct wasm conv'))).to.equal(false);
      // the default on webasm takes it for a plain 3x3 with a few output channels
      profile.kernels.clear();
      setBackendOptions({ conv: undefined, wasmConv: undefined });
      ops.conv2d(rand([2, 8, 10, 10], 3), rand([16, 8, 3, 3], 4), null, { padding: 1 }).dataSync();
      expect([...profile.kernels.keys()].some((k) => k.includes('direct wasm conv forward'))).to.equal(true);
    } finally {
      profile.on = false;
    }
  });

  it('a compiled model replays the implicit conv on new inputs', () => {
    withImplicit(true, () => {
      const model = new nn.Sequential(new nn.Conv2d(3, 8, 3, { padding: 1 }), new nn.ReLU(), new nn.Conv2d(8, 4, 3, { stride: 2 })).to('webasm');
      const compiled = nn.compile(model);
      for (let s = 0; s < 3; s++) {
        const x = rand([2, 3, 9, 9], 30 + s);
        const want = (model.forward(x) as Tensor).dataSync().slice();
        const got = (compiled(x) as Tensor).dataSync().slice();
        for (let i = 0; i < want.length; i++) expect(got[i]).to.be.closeTo(want[i], 1e-6 * (1 + Math.abs(want[i])));
      }
      expect(compiled.compileStats).to.include({ captures: 1, replays: 2 });
    });
  });

  it('an empty batch and a 1x1 image', () => {
    withImplicit(true, () => {
      expect(ops.conv2d(rand([0, 3, 5, 5], 1), rand([4, 3, 3, 3], 2), null, { padding: 1 }).shape).to.deep.equal([0, 4, 5, 5]);
      const c: Case = { x: [2, 3, 1, 1], w: [4, 3, 1, 1], bias: true, opts: {} };
      const got = runCase(c, 5);
      const ref = reference(c, got.X, got.W, got.B, got.GY, got.OH, got.OW);
      expectWithin(got.y, ref.y, ref.yBound, 'output');
      expectWithin(got.gw, ref.gw, ref.gwBound, 'grad weight');
    });
  });
});

describe('conv outputs from the output pool (src/backend/wasm/out-pool.ts)', () => {
  (available ? it : it.skip)('a recycled grad-input array is zeroed where no tap reads (2x2, stride 3: the last row and column)', () => {
    withImplicit(true, () => {
      const run = () =>
        tidy(() => {
          const x = rand([2, 3, 40, 40], 61, true);
          const w = rand([4, 3, 2, 2], 62, true);
          ops.conv2d(x, w, null, { stride: 3 }).sum().backward();
          return Array.from(x.grad!.dataSync());
        });
      const first = run();
      // a same-size output filled with garbage and freed: the next grad input may be handed it
      tidy(() => ops.conv2d(rand([2, 3, 40, 40], 63), rand([3, 3, 1, 1], 64), null).add(5));
      const hits = outPoolStats.reused;
      const second = run();
      expect(outPoolStats.reused).to.be.greaterThan(hits);
      expect(second).to.deep.equal(first);
      expect(first.filter((v) => v === 0).length).to.be.greaterThan(0);
    });
  });
});
