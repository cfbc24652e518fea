import { expect } from 'chai';
import { tensor, ops, backendFor, noGrad, Tensor } from '../../src';
import { testDevices, expectClose, checkGrad, fixture } from '../helpers';
import { directConvAvailable } from '../../src/backend/direct-lowering';
import { profile } from '../../src/backend/gpujs-backend';

const { conv2d } = ops;

interface Entry {
  shape: number[];
  data: number[];
}
interface ConvCase {
  name: string;
  opts: { stride?: number | number[]; padding?: number | number[] | 'same' | 'valid'; dilation?: number | number[]; groups?: number };
  x: Entry;
  w: Entry;
  b?: Entry;
  y: Entry;
  gy: Entry;
  gx: Entry;
  gw: Entry;
  gb?: Entry;
}

const cases = fixture<{ conv: ConvCase[] }>('conv.json').conv;

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 7.13 + i * 12.9898) * 0.9 + Math.cos(i * seed) * 0.1);
}

for (const device of testDevices()) {
  describe(`conv2d on ${device}`, function () {
    this.timeout(60000);
    const t = (e: Entry, requiresGrad = false) => tensor(e.data, { shape: e.shape, device, requiresGrad });
    const rnd = (shape: number[], seed: number) =>
      tensor(
        values(
          shape.reduce((a, b) => a * b, 1),
          seed,
        ),
        { shape, device },
      );

    for (const c of cases) {
      it(`matches PyTorch: ${c.name}`, () => {
        const x = t(c.x, true);
        const w = t(c.w, true);
        const b = c.b ? t(c.b, true) : null;
        const y = conv2d(x, w, b, c.opts as any);
        expect(y.shape).to.deep.equal(c.y.shape);
        expectClose(y, c.y.data, 1e-4, 1e-4, 'output');
        y.mul(t(c.gy)).sum().backward();
        expectClose(x.grad!, c.gx.data, 1e-4, 1e-4, 'grad input');
        expectClose(w.grad!, c.gw.data, 1e-4, 1e-4, 'grad weight');
        if (b) expectClose(b.grad!, c.gb!.data, 1e-4, 1e-4, 'grad bias');
      });
    }

    const gradConfigs: [string, number[], number[], boolean, Parameters<typeof conv2d>[3]][] = [
      ['plain 3x3 with bias', [2, 2, 5, 5], [3, 2, 3, 3], true, {}],
      ['stride 2, padding 1', [1, 2, 6, 5], [2, 2, 3, 3], true, { stride: 2, padding: 1 }],
      ['dilation 2, padding [2, 1]', [1, 1, 7, 6], [2, 1, 3, 2], false, { dilation: 2, padding: [2, 1] }],
      ['groups 2, stride [2, 1]', [1, 4, 5, 5], [4, 2, 2, 3], true, { groups: 2, stride: [2, 1], padding: [0, 1] }],
      ['non-square 1x3, padding same', [2, 2, 4, 5], [2, 2, 1, 4], true, { padding: 'same' }],
      ['stride 3, dilation [1, 2], padding 2', [1, 2, 8, 8], [2, 2, 3, 3], false, { stride: 3, dilation: [1, 2], padding: 2 }],
    ];
    for (const [name, xs, ws, withBias, opts] of gradConfigs) {
      it(`finite-difference gradients: ${name}`, () => {
        const inputs = [rnd(xs, 1), rnd(ws, 2)];
        if (withBias) inputs.push(rnd([ws[0]], 3));
        checkGrad((x, w, b) => conv2d(x, w, b ?? null, opts), inputs, { atol: 1e-2, rtol: 1e-2 });
      });
    }

    it('computes only the gradients whose inputs require grad', () => {
      const x = rnd([1, 2, 5, 5], 4);
      const w = tensor(values(18, 5), { shape: [1, 2, 3, 3], device, requiresGrad: true });
      const b = rnd([1], 6);
      const y = conv2d(x, w, b, { padding: 1 });
      const runs0 = backendFor(device).stats.kernelRuns;
      y.backward(tensor(values(25, 7), { shape: [1, 1, 5, 5], device }));
      const runs = backendFor(device).stats.kernelRuns - runs0;
      expect(x.grad).to.equal(null);
      expect(b.grad).to.equal(null);
      expect(w.grad!.shape).to.deep.equal([1, 2, 3, 3]);
      // grad weight + copying it into .grad
      expect(runs).to.be.at.most(2);
      const xg = tensor(values(50, 8), { shape: [1, 2, 5, 5], device, requiresGrad: true });
      const y2 = conv2d(xg, rnd([1, 2, 3, 3], 9), null);
      y2.sum().backward();
      expect(xg.grad!.shape).to.deep.equal([1, 2, 5, 5]);
    });

    it('reads strided (non-contiguous) inputs and gradients directly', () => {
      const base = rnd([1, 5, 6, 3], 10); // NHWC
      const x = base.permute(0, 3, 1, 2); // NCHW view
      const w = rnd([4, 3, 2, 2], 11).transpose(2, 3);
      const b = rnd([4], 12);
      const y = conv2d(x, w, b, { stride: [1, 2], padding: 1 });
      const yc = conv2d(x.contiguous(), w.contiguous(), b, { stride: [1, 2], padding: 1 });
      expectClose(y, yc, 1e-5, 1e-5, 'output');
      // an expanded (stride-0) upstream gradient
      const xr = tensor(x.contiguous().dataSync(), { shape: x.shape, device, requiresGrad: true });
      const wr = tensor(w.contiguous().dataSync(), { shape: w.shape, device, requiresGrad: true });
      conv2d(xr, wr, null, { padding: 1 }).sum().backward();
      const xr2 = tensor(x.contiguous().dataSync(), { shape: x.shape, device, requiresGrad: true });
      const wr2 = tensor(w.contiguous().dataSync(), { shape: w.shape, device, requiresGrad: true });
      const y2 = conv2d(xr2, wr2, null, { padding: 1 });
      y2.backward(tensor(new Float32Array(y2.numel()).fill(1), { shape: y2.shape, device }));
      expectClose(xr.grad!, xr2.grad!, 1e-5, 1e-5, 'grad input');
      expectClose(wr.grad!, wr2.grad!, 1e-5, 1e-5, 'grad weight');
    });

    it('accepts an unbatched [C, H, W] input', () => {
      const x = rnd([2, 4, 4], 13);
      const w = rnd([3, 2, 3, 3], 14);
      const y = conv2d(x, w, null, { padding: 1 });
      expect(y.shape).to.deep.equal([3, 4, 4]);
      expectClose(y, conv2d(x.unsqueeze(0), w, null, { padding: 1 }).squeeze(0), 1e-6, 1e-6);
    });

    it('no autograd node under noGrad', () => {
      const x = tensor(values(16, 1), { shape: [1, 1, 4, 4], device, requiresGrad: true });
      const y = noGrad(() => conv2d(x, rnd([1, 1, 2, 2], 2)));
      expect(y.requiresGrad).to.equal(false);
    });

    it('throws clear errors', () => {
      const w = rnd([16, 3, 3, 3], 1);
      expect(() => conv2d(rnd([2, 4, 28, 28], 2), w)).to.throw(
        'conv2d: expected input [N, C, H, W] with C = 3 (weight [16, 3, 3, 3], groups 1), got [2, 4, 28, 28]',
      );
      expect(() => conv2d(rnd([2, 3, 8, 8], 2), w, rnd([15], 3))).to.throw('conv2d: expected bias [16] (weight [16, 3, 3, 3]), got [15]');
      expect(() => conv2d(rnd([2, 3, 8, 8], 2), rnd([3, 3, 3], 1))).to.throw('conv2d: expected weight [O, C/groups, kH, kW], got [3, 3, 3]');
      expect(() => conv2d(rnd([2, 6, 8, 8], 2), rnd([3, 3, 3, 3], 1), null, { groups: 2 })).to.throw(
        'conv2d: out channels 3 (weight [3, 3, 3, 3]) must be divisible by groups 2',
      );
      expect(() => conv2d(rnd([1, 3, 2, 2], 2), w)).to.throw('conv2d: input [1, 3, 2, 2] padded to 2x2 is smaller than the kernel 3x3');
      expect(() => conv2d(rnd([1, 3, 8, 8], 2), w, null, { padding: 'same', stride: 2 })).to.throw(
        "padding='same' is not supported for strided convolutions",
      );
      expect(() => conv2d(rnd([1, 3, 8, 8], 2), w, null, { stride: 0 })).to.throw('conv2d: stride must be positive integers, got 0');
      expect(() => conv2d(rnd([8, 8], 2), w)).to.throw('conv2d: expected input [N, C, H, W]');
    });
  });
}

/** Runs fn with conv2d's variant forced (TSNN_CONV) and, optionally, a small im2col chunk limit. */
function withConv<T>(variant: 'direct' | 'im2col' | 'implicit', fn: () => T, colsLimit?: number): T {
  const saved = [process.env.TSNN_CONV, process.env.TSNN_CONV_COLS];
  process.env.TSNN_CONV = variant;
  if (colsLimit) process.env.TSNN_CONV_COLS = String(colsLimit);
  try {
    return fn();
  } finally {
    if (saved[0] === undefined) delete process.env.TSNN_CONV;
    else process.env.TSNN_CONV = saved[0];
    if (saved[1] === undefined) delete process.env.TSNN_CONV_COLS;
    else process.env.TSNN_CONV_COLS = saved[1];
  }
}

type Opts = Parameters<typeof conv2d>[3];
interface VariantCase {
  name: string;
  x: number[];
  w: number[];
  bias: boolean;
  opts: Opts;
  /** a view of x instead of a contiguous tensor */
  view?: 'nhwc' | 'transposed';
  /** upstream gradient through a transposed view (non-mergeable strides) instead of a contiguous one */
  gyView?: boolean;
  /** im2col batch chunk limit (cells per unfold) */
  cols?: number;
}

const VARIANT_CASES: VariantCase[] = [
  { name: 'stride 2, padding 1', x: [2, 4, 7, 6], w: [8, 4, 3, 3], bias: true, opts: { stride: 2, padding: 1 } },
  { name: 'dilation 2, padding 2', x: [2, 3, 8, 8], w: [4, 3, 3, 3], bias: false, opts: { dilation: 2, padding: 2 } },
  { name: 'groups 2', x: [2, 4, 6, 6], w: [8, 2, 3, 3], bias: true, opts: { groups: 2, padding: 1 } },
  {
    name: 'non-square input and kernel, stride [2, 1], padding [0, 2]',
    x: [2, 3, 7, 9],
    w: [5, 3, 2, 4],
    bias: true,
    opts: { stride: [2, 1], padding: [0, 2] },
  },
  { name: 'batch 1, padding same (asymmetric)', x: [1, 3, 6, 5], w: [4, 3, 3, 2], bias: true, opts: { padding: 'same' } },
  {
    name: 'out channels not a multiple of 4, stride 3, dilation [1, 2]',
    x: [3, 2, 9, 9],
    w: [6, 2, 3, 3],
    bias: true,
    opts: { stride: 3, dilation: [1, 2], padding: 1 },
  },
  { name: '1x1 (x is its own patch matrix), groups 3', x: [2, 6, 4, 5], w: [6, 2, 1, 1], bias: true, opts: { groups: 3 } },
  { name: '1x1 stride 2', x: [2, 4, 5, 5], w: [4, 4, 1, 1], bias: false, opts: { stride: 2 } },
  {
    name: 'NHWC view input, strided upstream gradient',
    x: [2, 3, 5, 4],
    w: [4, 3, 3, 3],
    bias: true,
    opts: { padding: 1 },
    view: 'nhwc',
    gyView: true,
  },
  { name: '1x1 on a transposed (non-mergeable) input', x: [2, 3, 4, 5], w: [4, 3, 1, 1], bias: true, opts: {}, view: 'transposed', gyView: true },
  { name: 'batch in chunks (small unfold limit)', x: [5, 3, 6, 6], w: [4, 3, 3, 3], bias: true, opts: { padding: 1, stride: [1, 2] }, cols: 250 },
  { name: '1x1 batch in chunks', x: [5, 4, 3, 3], w: [4, 4, 1, 1], bias: false, opts: {}, cols: 40 },
];

for (const device of testDevices()) {
  describe(`conv2d variants (direct, im2col) on ${device}`, function () {
    this.timeout(120000);
    const rnd = (shape: number[], seed: number) =>
      tensor(
        values(
          shape.reduce((a, b) => a * b, 1),
          seed,
        ),
        { shape, device },
      );
    const input = (c: VariantCase, seed: number): Tensor => {
      if (c.view === 'nhwc') return rnd([c.x[0], c.x[2], c.x[3], c.x[1]], seed).permute(0, 3, 1, 2);
      if (c.view === 'transposed') return rnd([c.x[0], c.x[1], c.x[3], c.x[2]], seed).transpose(2, 3);
      return rnd(c.x, seed);
    };

    for (const c of VARIANT_CASES) {
      it(`im2col equals the direct kernels: ${c.name}`, () => {
        const run = (variant: 'direct' | 'im2col' | 'implicit') =>
          withConv(
            variant,
            () => {
              const x = input(c, 21);
              const xr = tensor(x.dataSync(), { shape: x.shape, device, requiresGrad: true });
              const xin =
                c.view === 'nhwc'
                  ? xr.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
                  : c.view === 'transposed'
                    ? xr.transpose(2, 3).contiguous().transpose(2, 3)
                    : xr;
              const w = rnd(c.w, 22);
              w.requiresGrad = true;
              const b = c.bias ? rnd([c.w[0]], 23) : null;
              if (b) b.requiresGrad = true;
              const y = conv2d(xin, w, b, c.opts);
              const gy = rnd(c.gyView ? [y.shape[0], y.shape[1], y.shape[3], y.shape[2]] : y.shape, 24);
              if (c.gyView) y.transpose(2, 3).mul(gy).sum().backward();
              else y.backward(gy);
              return { y: y.dataSync(), gx: xr.grad!.dataSync(), gw: w.grad!.dataSync(), gb: b ? b.grad!.dataSync() : null };
            },
            c.cols,
          );
        const d = run('direct');
        const i = run('im2col');
        expectClose(i.y, d.y, 1e-4, 1e-4, 'output');
        expectClose(i.gx, d.gx, 1e-4, 1e-4, 'grad input');
        expectClose(i.gw, d.gw, 1e-4, 1e-4, 'grad weight');
        if (d.gb) expectClose(i.gb!, d.gb, 1e-4, 1e-4, 'grad bias');
        if (device === 'webasm') {
          // the implicit GEMM (src/backend/wasm/conv-lowering.ts; im2col where it is switched off)
          const m = run('implicit');
          expectClose(m.y, d.y, 1e-4, 1e-4, 'implicit output');
          expectClose(m.gx, d.gx, 1e-4, 1e-4, 'implicit grad input');
          expectClose(m.gw, d.gw, 1e-4, 1e-4, 'implicit grad weight');
          if (d.gb) expectClose(m.gb!, d.gb, 1e-4, 1e-4, 'implicit grad bias');
        }
      });
    }

    for (const c of VARIANT_CASES.filter((v) => !v.view)) {
      it(`im2col finite-difference gradients: ${c.name}`, () => {
        const inputs = [rnd(c.x, 31), rnd(c.w, 32)];
        if (c.bias) inputs.push(rnd([c.w[0]], 33));
        withConv('im2col', () => checkGrad((x, w, b) => conv2d(x, w, b ?? null, c.opts), inputs, { atol: 1e-2, rtol: 1e-2 }), c.cols);
      });
    }

    it('im2col splits reductions longer than MAX_LOOP (C·kH·kW = 18432; OH·OW = 16641)', () => {
      const deep = () => [rnd([1, 2048, 3, 3], 41), rnd([2, 2048, 3, 3], 42)];
      const wide = () => [rnd([1, 1, 131, 131], 43), rnd([2, 1, 3, 3], 44)];
      for (const make of [deep, wide]) {
        const run = (variant: 'direct' | 'im2col') =>
          withConv(variant, () => {
            const [x, w] = make();
            x.requiresGrad = true;
            w.requiresGrad = true;
            const y = conv2d(x, w, null);
            y.backward(rnd(y.shape, 45));
            return { y: y.dataSync(), gx: x.grad!.dataSync(), gw: w.grad!.dataSync() };
          });
        const d = run('direct');
        const i = run('im2col');
        expectClose(i.y, d.y, 1e-3, 1e-4, 'output');
        expectClose(i.gx, d.gx, 1e-3, 1e-4, 'grad input');
        expectClose(i.gw, d.gw, 1e-3, 1e-4, 'grad weight');
      }
    });

    it('chooses the implicit GEMM on webasm for a ResNet-block convolution (im2col without it), the direct kernel elsewhere', () => {
      const x = rnd([2, 16, 14, 14], 51);
      const w = rnd([16, 16, 3, 3], 52);
      const stats = backendFor(device).stats;
      const implicit = device === 'webasm' && directConvAvailable(device);
      profile.on = true;
      profile.kernels.clear();
      try {
        const runs0 = stats.kernelRuns;
        noGrad(() => conv2d(x, w, null, { padding: 1 }));
        // direct and implicit: one kernel; im2col: unfold + matmul
        expect(stats.kernelRuns - runs0).to.equal(device === 'webasm' && !implicit ? 2 : 1);
        expect([...profile.kernels.keys()].some((k) => k.includes('direct wasm conv forward'))).to.equal(implicit);
      } finally {
        profile.on = false;
      }
    });
  });
}
