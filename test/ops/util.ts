/**
 * Plain-JS references for the op tests: flat row-major arrays with a shape, NumPy broadcasting,
 * reductions over any dims, a high-precision erf. Nothing here touches tsnn's kernels.
 */
import { DeviceName, Tensor, tensor } from '../../src';

export interface Arr {
  data: number[];
  shape: number[];
}

export const numel = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let i = 0;
  for (let d = 0; d < shape.length; d++) i = i * shape[d] + idx[d];
  return i;
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error('reference: not broadcastable');
    return da === 1 ? db : da;
  });
}

/** Value of `x` broadcast to `out` at the output multi-index. */
export function bread(x: Arr, outIdx: readonly number[]): number {
  const lead = outIdx.length - x.shape.length;
  return x.data[
    ravel(
      x.shape.map((d, i) => (d === 1 ? 0 : outIdx[i + lead])),
      x.shape,
    )
  ];
}

export function mapRef(xs: Arr[], f: (...v: number[]) => number): Arr {
  const shape = xs.reduce<number[]>((s, x) => broadcastShape(s, x.shape), []);
  const data = Array.from({ length: numel(shape) }, (_, i) => {
    const idx = unravel(i, shape);
    return f(...xs.map((x) => bread(x, idx)));
  });
  return { data, shape };
}

/** Sums (or folds) over `dims`; dims sorted, unique. */
export function reduceRef(
  x: Arr,
  dims: number[],
  keepdim: boolean,
  init: number,
  fold: (acc: number, v: number) => number,
  fin: (acc: number, n: number) => number = (a) => a,
): Arr {
  const outShape = x.shape.map((d, i) => (dims.includes(i) ? 1 : d));
  const acc = new Array<number>(numel(outShape)).fill(init);
  const n = numel(dims.map((d) => x.shape[d]));
  for (let i = 0; i < x.data.length; i++) {
    const idx = unravel(i, x.shape).map((v, d) => (dims.includes(d) ? 0 : v));
    const o = ravel(idx, outShape);
    acc[o] = fold(acc[o], x.data[i]);
  }
  const shape = keepdim ? outShape : x.shape.filter((_, i) => !dims.includes(i));
  return { data: acc.map((a) => fin(a, n)), shape };
}

/** erf to ~1e-15 (series for small |x|, continued fraction for large). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  // erfc continued fraction (Lentz)
  let f = ax;
  let C = ax;
  let D = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    D = ax + an * D;
    D = 1 / D;
    C = ax + an / C;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

export const geluRef = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanhRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export function arr(t: Tensor): Arr {
  return { data: Array.from(t.dataSync()), shape: [...t.shape] };
}

export function toTensor(a: Arr, device: DeviceName, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(a.data), { shape: a.shape, device, requiresGrad });
}

/** Deterministic pseudo-random values in [lo, hi) (a tiny LCG; tests must not depend on the library RNG). */
export function values(n: number, seed = 1, lo = -2, hi = 2): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((s >>> 8) / 16777216) * (hi - lo);
  });
}

/** A tensor of the given shape filled with `values(...)`. */
export function seeded(shape: number[], device: DeviceName, seed = 1, lo = -2, hi = 2, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(values(numel(shape), seed, lo, hi)), { shape, device, requiresGrad });
}

/** Values bounded away from zero (for kinks at 0: relu, abs, sign). */
export function awayFromZero(shape: number[], device: DeviceName, seed = 1, requiresGrad = false): Tensor {
  const v = values(numel(shape), seed, -2, 2).map((x) => (Math.abs(x) < 0.2 ? x + (x < 0 ? -0.3 : 0.3) : x));
  return tensor(Float32Array.from(v), { shape, device, requiresGrad });
}

/** Expects fn to throw an error whose message matches every pattern. */
export function throwsWith(fn: () => unknown, ...patterns: (RegExp | string)[]): string {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) throw new Error(`expected an error matching ${patterns.join(', ')}, but nothing was thrown`);
  for (const p of patterns) {
    const ok = typeof p === 'string' ? err.message.includes(p) : p.test(err.message);
    if (!ok) throw new Error(`error message "${err.message}" does not match ${p}`);
  }
  return err.message;
}
