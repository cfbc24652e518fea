/** Elementwise ops: values against plain-JS references, gradients against finite differences, edge values. */
import { expect } from 'chai';
import { ops, Tensor, tensor } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { arr, awayFromZero, erf, geluRef, geluTanhRef, mapRef, seeded, throwsWith } from './util';

type Unary = { name: string; f: (x: Tensor) => Tensor; ref: (x: number) => number; lo?: number; hi?: number; kinkFree?: boolean };

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const UNARY: Unary[] = [
  { name: 'neg', f: (x) => x.neg(), ref: (x) => -x },
  { name: 'exp', f: (x) => x.exp(), ref: Math.exp },
  { name: 'log', f: (x) => x.log(), ref: Math.log, lo: 0.3, hi: 3 },
  { name: 'sqrt', f: (x) => x.sqrt(), ref: Math.sqrt, lo: 0.3, hi: 3 },
  { name: 'rsqrt', f: (x) => x.rsqrt(), ref: (x) => 1 / Math.sqrt(x), lo: 0.3, hi: 3 },
  { name: 'abs', f: (x) => x.abs(), ref: Math.abs, kinkFree: false },
  { name: 'square', f: (x) => x.square(), ref: (x) => x * x },
  { name: 'sin', f: (x) => x.sin(), ref: Math.sin },
  { name: 'cos', f: (x) => x.cos(), ref: Math.cos },
  { name: 'relu', f: (x) => x.relu(), ref: (x) => Math.max(x, 0), kinkFree: false },
  { name: 'sigmoid', f: (x) => x.sigmoid(), ref: sigmoid },
  { name: 'tanh', f: (x) => x.tanh(), ref: Math.tanh },
  { name: 'gelu', f: (x) => x.gelu(), ref: geluRef },
  { name: "gelu('tanh')", f: (x) => x.gelu('tanh'), ref: geluTanhRef },
  { name: 'sign', f: (x) => x.sign(), ref: Math.sign, kinkFree: false },
];

type Binary = {
  name: string;
  f: (a: Tensor | number, b: Tensor | number) => Tensor;
  ref: (a: number, b: number) => number;
  positiveA?: boolean;
  awayB?: boolean;
};
const BINARY: Binary[] = [
  { name: 'add', f: ops.add, ref: (a, b) => a + b },
  { name: 'sub', f: ops.sub, ref: (a, b) => a - b },
  { name: 'mul', f: ops.mul, ref: (a, b) => a * b },
  { name: 'div', f: ops.div, ref: (a, b) => a / b, awayB: true },
  { name: 'pow', f: ops.pow, ref: (a, b) => a ** b, positiveA: true },
  { name: 'maximum', f: ops.maximum, ref: Math.max },
  { name: 'minimum', f: ops.minimum, ref: Math.min },
];

describe('ops: elementwise', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      describe('unary values and gradients', () => {
        for (const u of UNARY) {
          it(u.name, () => {
            const x = u.kinkFree === false ? awayFromZero([2, 3], device, 7) : seeded([2, 3], device, 7, u.lo ?? -2, u.hi ?? 2);
            expectClose(u.f(x), mapRef([arr(x)], u.ref).data, 1e-5, 1e-5, u.name);
            if (u.name !== 'sign') checkGrad(u.f, [x]);
            else {
              const xg = x.detach().requiresGrad_();
              u.f(xg).sum().backward();
              expectClose(xg.grad!, [0, 0, 0, 0, 0, 0]);
            }
          });
        }
        it('relu and abs at 0 have subgradient 0 (as PyTorch)', () => {
          const x = tensor([0, 0], { device, requiresGrad: true });
          x.relu().add(x.abs()).sum().backward();
          expectClose(x.grad!, [0, 0]);
        });
      });

      describe('binary values and gradients, with broadcasting', () => {
        for (const b of BINARY) {
          it(b.name, () => {
            const pairs: [number[], number[]][] = [
              [
                [2, 3],
                [2, 3],
              ],
              [[2, 3], [3]],
              [
                [2, 1],
                [1, 3],
              ],
              [[3], [2, 1, 3]],
              [[2, 3], []],
            ];
            pairs.forEach(([sa, sb], k) => {
              const a = b.positiveA ? seeded(sa, device, 11 + k, 0.5, 2) : seeded(sa, device, 11 + k);
              // distinct magnitudes so maximum/minimum have no ties and div has no tiny denominators
              const bv = b.awayB ? awayFromZero(sb, device, 29 + k) : seeded(sb, device, 29 + k, -1.5, 1.5);
              expectClose(b.f(a, bv), mapRef([arr(a), arr(bv)], b.ref).data, 1e-5, 1e-5, `${b.name} ${sa} ${sb}`);
              expect(b.f(a, bv).shape).to.deep.equal(mapRef([arr(a), arr(bv)], b.ref).shape);
              if (k < 3 || b.name === 'mul') checkGrad((x, y) => b.f(x, y), [a, bv]);
            });
          });
          it(`${b.name} with a number on either side`, () => {
            const a = b.positiveA ? seeded([2, 2], device, 3, 0.5, 2) : awayFromZero([2, 2], device, 3);
            // maximum/minimum: a number away from every element (no kink inside the finite-difference step)
            const s = b.name === 'maximum' || b.name === 'minimum' ? 0 : 1.5;
            expectClose(
              b.f(a, s),
              arr(a).data.map((v) => b.ref(v, s)),
              1e-5,
              1e-5,
            );
            expectClose(
              b.f(s, a),
              arr(a).data.map((v) => b.ref(s, v)),
              1e-5,
              1e-5,
            );
            checkGrad((x) => b.f(x, s), [a]);
            checkGrad((x) => b.f(s, x), [a]);
          });
        }
        it('maximum/minimum split the gradient evenly on ties (as PyTorch)', () => {
          const a = tensor([1, 2, 3], { device, requiresGrad: true });
          const b = tensor([1, 0, 5], { device, requiresGrad: true });
          a.maximum(b).add(a.minimum(b)).sum().backward();
          expectClose(a.grad!, [1, 1, 1]);
          expectClose(b.grad!, [1, 1, 1]);
          const c = tensor([2, 2], { device, requiresGrad: true });
          c.maximum(tensor([2, 1], { device }))
            .sum()
            .backward();
          expectClose(c.grad!, [0.5, 1]);
        });
        it('pow of negative bases with integer exponents, pow(0, 0) = 1', () => {
          const x = tensor([-2, -3, -0.5, 0, 2], { device });
          expectClose(x.pow(2), [4, 9, 0.25, 0, 4]);
          expectClose(x.pow(3), [-8, -27, -0.125, 0, 8]);
          expectClose(x.pow(0), [1, 1, 1, 1, 1]);
          expectClose(x.pow(tensor([2, 3, -1, 2, 0.5], { device })), [4, -27, -2, 0, Math.SQRT2], 1e-5, 1e-5);
          const xs = tensor([-2, -1.5, 1.5], { device, requiresGrad: true });
          xs.pow(3).sum().backward();
          expectClose(xs.grad!, [12, 6.75, 6.75], 1e-4, 1e-5);
          // a non-integer power of a negative number is NaN, as in PyTorch
          expect(Number.isNaN(tensor([-2], { device }).pow(0.5).item())).to.equal(true);
        });
        it('pow gradients at a zero base are 0 where PyTorch defines them so (not NaN)', () => {
          const x = tensor([0, 1.5], { device, requiresGrad: true });
          x.pow(0).sum().backward(); // d/dx x^0 = 0 everywhere
          expectClose(x.grad!, [0, 0]);
          const a = tensor([0, 2], { device, requiresGrad: true });
          const e = tensor([2, 2], { device, requiresGrad: true });
          a.pow(e).sum().backward(); // d/de 0^e = 0 for e >= 0
          expectClose(a.grad!, [0, 4]);
          expectClose(e.grad!, [0, 4 * Math.log(2)], 1e-5, 1e-5);
        });
        it('comparisons give 0/1 masks and broadcast', () => {
          const a = tensor([[1, 2, 3]], { device });
          const b = tensor([[2], [1]], { device });
          expectClose(a.eq(b), [
            [0, 1, 0],
            [1, 0, 0],
          ]);
          expectClose(a.ne(b), [
            [1, 0, 1],
            [0, 1, 1],
          ]);
          expectClose(a.gt(b), [
            [0, 0, 1],
            [0, 1, 1],
          ]);
          expectClose(a.ge(b), [
            [0, 1, 1],
            [1, 1, 1],
          ]);
          expectClose(a.lt(b), [
            [1, 0, 0],
            [0, 0, 0],
          ]);
          expectClose(a.le(b), [
            [1, 1, 0],
            [1, 0, 0],
          ]);
          expectClose(a.gt(2), [[0, 0, 1]]);
        });
      });

      describe('clamp and where', () => {
        it('clamp values and gradient', () => {
          const x = tensor([-2, -0.7, -0.2, 0.3, 0.8, 2], { device });
          expectClose(x.clamp(-0.5, 0.5), [-0.5, -0.5, -0.2, 0.3, 0.5, 0.5]);
          expectClose(x.clamp(-0.5), [-0.5, -0.5, -0.2, 0.3, 0.8, 2]);
          expectClose(x.clamp(null, 0.5), [-2, -0.7, -0.2, 0.3, 0.5, 0.5]);
          checkGrad((t) => t.clamp(-0.5, 0.5), [x]);
          checkGrad((t) => t.clamp(-0.5), [x]);
          checkGrad((t) => t.clamp(undefined, 0.5), [x]);
          throwsWith(() => x.clamp(1, 0), 'clamp', 'min 1', 'max 0');
        });
        it('where values and gradients, broadcasting condition and operands', () => {
          const cond = tensor([[1], [0]], { device });
          const a = seeded([2, 3], device, 5);
          const b = seeded([3], device, 6);
          const y = ops.where(cond, a, b);
          expectClose(y, mapRef([arr(cond), arr(a), arr(b)], (c, x, z) => (c ? x : z)).data);
          checkGrad((x, z) => ops.where(cond, x, z), [a, b]);
          expectClose(ops.where(cond, a, 0.5), mapRef([arr(cond), arr(a)], (c, x) => (c ? x : 0.5)).data);
          checkGrad((x) => a.where(ops.gt(x, 0), x), [a]);
        });
      });

      describe('edge values', () => {
        it('tanh, sigmoid and both gelus stay finite and saturate for large |x|', () => {
          const x = tensor([-100, -50, -20, 20, 50, 100], { device });
          expectClose(x.tanh(), [-1, -1, -1, 1, 1, 1]);
          expectClose(x.sigmoid(), [0, 0, 0, 1, 1, 1]);
          expectClose(x.gelu(), [0, 0, 0, 20, 50, 100]);
          expectClose(x.gelu('tanh'), [0, 0, 0, 20, 50, 100]);
          const g = x.detach().requiresGrad_();
          g.tanh().add(g.sigmoid()).add(g.gelu()).add(g.gelu('tanh')).sum().backward();
          expectClose(g.grad!, [0, 0, 0, 2, 2, 2]);
        });
        it('gelu (erf) is accurate to 1e-6 across its range', () => {
          const xs = Array.from({ length: 81 }, (_, i) => -6 + i * 0.15);
          const x = tensor(xs, { device });
          expectClose(x.gelu(), xs.map(geluRef), 1e-6, 1e-6, 'gelu');
          expectClose(x.gelu('tanh'), xs.map(geluTanhRef), 1e-6, 1e-5, "gelu('tanh')");
          // d/dx gelu = Φ(x) + x φ(x)
          const xg = x.detach().requiresGrad_();
          xg.gelu().sum().backward();
          const dgelu = (v: number) => 0.5 * (1 + erf(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
          expectClose(xg.grad!, xs.map(dgelu), 1e-6, 1e-5, 'gelu grad');
        });
        it('exp overflows to Infinity and log(0) is -Infinity, as in float32', () => {
          expect(tensor([100], { device }).exp().item()).to.equal(Infinity);
          expect(tensor([0], { device }).log().item()).to.equal(-Infinity);
        });
        it('reads strided and offset views as inputs', () => {
          const base = seeded([4, 6], device, 9);
          const v = base.slice(1, 1, 5, 2).transpose(0, 1); // [2, 4] with non-unit strides and an offset
          const ref = arr(v.contiguous());
          expectClose(v.exp(), ref.data.map(Math.exp), 1e-5, 1e-5);
          expectClose(
            v.add(v),
            ref.data.map((a) => 2 * a),
          );
        });
      });
    });
  }
});
