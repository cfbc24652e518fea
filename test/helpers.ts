/** Shared test helpers: which devices to test on, closeness checks, finite differences, fixtures. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, deviceReport, DeviceName, noGrad, tensor, NestedArray } from '../src';

/** Devices available here (TSNN_TEST_DEVICES=cpu,webasm narrows them). */
export function testDevices(): DeviceName[] {
  const ok = deviceReport()
    .filter((d) => d.ok)
    .map((d) => d.device);
  const want = process.env.TSNN_TEST_DEVICES?.split(',') as DeviceName[] | undefined;
  return want ? ok.filter((d) => want.includes(d)) : ok;
}

export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export function fixture<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test/fixtures', name), 'utf8'));
}

export function fixturePath(name: string): string {
  return path.join(repoRoot(), 'test/fixtures', name);
}

function flat(x: Tensor | NestedArray | Float32Array): number[] {
  if (x instanceof Tensor) return Array.from(x.dataSync());
  if (x instanceof Float32Array) return Array.from(x);
  if (typeof x === 'number') return [x];
  return (x as NestedArray[]).flatMap((v) => flat(v as NestedArray));
}

/**
 * Elementwise |a-b| <= atol + rtol*|b| for finite expected values; a non-finite expected value must be
 * matched exactly (NaN only by NaN, +Infinity only by +Infinity), as must a non-finite actual value. The
 * worst offender is named in the message.
 */
export function expectClose(
  actual: Tensor | NestedArray | Float32Array,
  expected: Tensor | NestedArray | Float32Array,
  atol = 1e-4,
  rtol = 1e-4,
  what = '',
): void {
  const a = flat(actual);
  const b = flat(expected);
  expect(a.length, `${what} length`).to.equal(b.length);
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    // Infinity - Infinity is NaN and atol + rtol*Infinity is Infinity: neither may reach the arithmetic
    const exact = !Number.isFinite(a[i]) || !Number.isFinite(b[i]);
    const err = exact ? (Object.is(a[i], b[i]) ? -Infinity : Infinity) : Math.abs(a[i] - b[i]) - (atol + rtol * Math.abs(b[i]));
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
  }
  if (worst >= 0) expect.fail(`${what} element ${worst}: got ${a[worst]}, expected ${b[worst]} (atol ${atol}, rtol ${rtol})`);
}

/**
 * Central finite differences of sum(f(x) * w) for a fixed random weighting w, compared with autograd.
 * Inputs are float32, so step and tolerance are sized for that.
 */
export function checkGrad(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { eps?: number; atol?: number; rtol?: number } = {}): void {
  const eps = opts.eps ?? 1e-2;
  const xs = inputs.map((x) => tensor(x.dataSync(), { shape: x.shape, device: x.device, requiresGrad: true }));
  const out = f(...xs);
  const w = tensor(
    Array.from({ length: out.numel() }, (_, i) => Math.sin(i + 1)),
    { shape: out.shape, device: out.device },
  );
  out.mul(w).sum().backward();
  xs.forEach((x, k) => {
    const base = x.dataSync();
    const numeric = new Float32Array(base.length);
    noGrad(() => {
      for (let i = 0; i < base.length; i++) {
        const eval1 = (delta: number) => {
          const v = Float32Array.from(base);
          v[i] += delta;
          const args = xs.map((y, j) => (j === k ? tensor(v, { shape: x.shape, device: x.device }) : y.detach()));
          return f(...args)
            .mul(w)
            .sum()
            .item();
        };
        numeric[i] = (eval1(eps) - eval1(-eps)) / (2 * eps);
      }
    });
    expect(x.grad, `input ${k} got no gradient`).to.not.equal(null);
    expectClose(x.grad!, numeric, opts.atol ?? 2e-2, opts.rtol ?? 2e-2, `grad of input ${k}`);
  });
}

/** Runs f with environment variables set, restoring them after (even when f throws). */
export function withEnv<T>(vars: Record<string, string>, f: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return f();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
