import { expect } from 'chai';
import { tensor, ops, Tensor } from '../../src';
import { testDevices, expectClose, checkGrad, fixture } from '../helpers';

const { maxPool2d, avgPool2d, adaptiveAvgPool2d } = ops;

interface Entry {
  shape: number[];
  data: number[];
}
interface PoolCase {
  name: string;
  op: 'maxPool2d' | 'avgPool2d' | 'adaptiveAvgPool2d';
  opts: Record<string, any>;
  x: Entry;
  y: Entry;
  gy: Entry;
  gx: Entry;
}

const cases = fixture<{ pool: PoolCase[] }>('conv.json').pool;

/** The fixture's PyTorch keyword arguments, as our call. */
function run(c: PoolCase, x: Tensor): Tensor {
  const o = c.opts;
  if (c.op === 'maxPool2d') return maxPool2d(x, o.kernel_size, { stride: o.stride, padding: o.padding, dilation: o.dilation, ceilMode: o.ceil_mode });
  if (c.op === 'avgPool2d') {
    return avgPool2d(x, o.kernel_size, { stride: o.stride, padding: o.padding, ceilMode: o.ceil_mode, countIncludePad: o.count_include_pad });
  }
  return adaptiveAvgPool2d(x, o.output_size);
}

/** Distinct values (no ties, so max pooling is differentiable for finite differences). */
function distinct(shape: number[], seed: number, device: Tensor['device']): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const perm = Array.from({ length: n }, (_, i) => ((i * 37 + seed * 11) % n) / n - 0.5);
  return tensor(perm, { shape, device });
}

for (const device of testDevices()) {
  describe(`pooling on ${device}`, function () {
    this.timeout(60000);
    const t = (e: Entry, requiresGrad = false) => tensor(e.data, { shape: e.shape, device, requiresGrad });

    for (const c of cases) {
      it(`matches PyTorch: ${c.op} ${c.name}`, () => {
        const x = t(c.x, true);
        const y = run(c, x);
        expect(y.shape).to.deep.equal(c.y.shape);
        expectClose(y, c.y.data, 1e-4, 1e-4, 'output');
        y.mul(t(c.gy)).sum().backward();
        expectClose(x.grad!, c.gx.data, 1e-4, 1e-4, 'grad input');
      });
    }

    const gradConfigs: [string, number[], (x: Tensor) => Tensor][] = [
      ['maxPool2d k2', [1, 2, 4, 6], (x) => maxPool2d(x, 2)],
      ['maxPool2d k3 s2 p1', [2, 1, 5, 5], (x) => maxPool2d(x, 3, { stride: 2, padding: 1 })],
      ['maxPool2d k[2,3] dilation 2 ceilMode', [1, 2, 7, 8], (x) => maxPool2d(x, [2, 3], { stride: [2, 2], dilation: 2, ceilMode: true })],
      ['avgPool2d k3 s2 p1 ceilMode', [1, 2, 6, 7], (x) => avgPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true })],
      [
        'avgPool2d k[2,3] s1 countIncludePad false',
        [2, 1, 4, 5],
        (x) => avgPool2d(x, [2, 3], { stride: 1, padding: [1, 1], countIncludePad: false }),
      ],
      ['adaptiveAvgPool2d [3, 4] from 5x7', [1, 2, 5, 7], (x) => adaptiveAvgPool2d(x, [3, 4])],
      ['adaptiveAvgPool2d [null, 2]', [1, 1, 3, 5], (x) => adaptiveAvgPool2d(x, [null, 2])],
    ];
    for (const [name, shape, f] of gradConfigs) {
      it(`finite-difference gradients: ${name}`, () => {
        checkGrad(f, [distinct(shape, 3, device)], { eps: 1e-3, atol: 1e-2, rtol: 1e-2 });
      });
    }

    it('maxPool2d routes a tied gradient to the first maximum only', () => {
      const x = tensor(
        [
          [
            [
              [1, 1],
              [1, 1],
            ],
          ],
        ],
        { device, requiresGrad: true },
      );
      maxPool2d(x, 2).sum().backward();
      expect(Array.from(x.grad!.dataSync())).to.deep.equal([1, 0, 0, 0]);
    });

    it('maxPool2d propagates NaN', () => {
      const y = maxPool2d(
        tensor(
          [
            [
              [
                [1, NaN],
                [3, 2],
              ],
            ],
          ],
          { device },
        ),
        2,
      );
      expect(Number.isNaN(y.item())).to.equal(true);
    });

    it('output sizes follow PyTorch (ceil mode drops a window starting in the right padding)', () => {
      const x = tensor(new Float32Array(1 * 1 * 5 * 5), { shape: [1, 1, 5, 5], device });
      expect(maxPool2d(x, 2, { stride: 2 }).shape).to.deep.equal([1, 1, 2, 2]);
      expect(maxPool2d(x, 2, { stride: 2, ceilMode: true }).shape).to.deep.equal([1, 1, 3, 3]);
      expect(maxPool2d(x, 2, { stride: 2, padding: 1, ceilMode: true }).shape).to.deep.equal([1, 1, 3, 3]);
      expect(avgPool2d(x, 3, { stride: 2, padding: 1 }).shape).to.deep.equal([1, 1, 3, 3]);
      expect(adaptiveAvgPool2d(x, [2, 7]).shape).to.deep.equal([1, 1, 2, 7]);
    });

    it('accepts unbatched [C, H, W] and strided inputs', () => {
      const base = distinct([6, 5, 3], 5, device); // HWC
      const x = base.permute(2, 0, 1); // CHW view
      const y = maxPool2d(x, 2, { padding: 1 });
      expect(y.shape).to.deep.equal([3, 4, 3]);
      expectClose(y, maxPool2d(x.contiguous().unsqueeze(0), 2, { padding: 1 }).squeeze(0), 0, 0);
      expectClose(avgPool2d(x, 3, { stride: 1 }), avgPool2d(x.contiguous(), 3, { stride: 1 }), 1e-6, 1e-6);
      expectClose(adaptiveAvgPool2d(x, 1), x.contiguous().mean([1, 2], true), 1e-6, 1e-6);
    });

    it('throws clear errors', () => {
      const x = tensor(new Float32Array(2 * 3 * 4 * 4), { shape: [2, 3, 4, 4], device });
      expect(() => maxPool2d(x, 2, { padding: 2 })).to.throw('maxPool2d: padding [2, 2] should be at most half of the kernel size [2, 2]');
      expect(() => maxPool2d(x, 5)).to.throw('maxPool2d: input [2, 3, 4, 4] is too small for kernel 5x5');
      expect(() => avgPool2d(x.reshape([2, 48]), 2)).to.throw('avgPool2d: expected input [N, C, H, W] or [C, H, W], got [2, 48]');
      expect(() => adaptiveAvgPool2d(x, 0)).to.throw('adaptiveAvgPool2d: outputSize must be positive integers');
      expect(() => maxPool2d(x, 0)).to.throw('maxPool2d: kernelSize must be positive integers, got 0');
    });
  });
}
