import { expect } from 'chai';
import { tensor, ops, backendFor, noGrad } from '../../src';
import { testDevices, expectClose, checkGrad, fixture } from '../helpers';

const { conv2d } = ops;

interface Entry { shape: number[]; data: number[] }
interface ConvCase {
  name: string;
  opts: { stride?: number | number[]; padding?: number | number[] | 'same' | 'valid'; dilation?: number | number[]; groups?: number };
  x: Entry; w: Entry; b?: Entry; y: Entry; gy: Entry; gx: Entry; gw: Entry; gb?: Entry;
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
    const rnd = (shape: number[], seed: number) => tensor(values(shape.reduce((a, b) => a * b, 1), seed), { shape, device });

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
      expect(() => conv2d(rnd([2, 6, 8, 8], 2), rnd([3, 3, 3, 3], 1), null, { groups: 2 })).to.throw('conv2d: out channels 3 (weight [3, 3, 3, 3]) must be divisible by groups 2');
      expect(() => conv2d(rnd([1, 3, 2, 2], 2), w)).to.throw('conv2d: input [1, 3, 2, 2] padded to 2x2 is smaller than the kernel 3x3');
      expect(() => conv2d(rnd([1, 3, 8, 8], 2), w, null, { padding: 'same', stride: 2 })).to.throw("padding='same' is not supported for strided convolutions");
      expect(() => conv2d(rnd([1, 3, 8, 8], 2), w, null, { stride: 0 })).to.throw('conv2d: stride must be positive integers, got 0');
      expect(() => conv2d(rnd([8, 8], 2), w)).to.throw('conv2d: expected input [N, C, H, W]');
    });
  });
}
