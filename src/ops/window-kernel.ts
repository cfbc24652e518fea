/**
 * Source helpers shared by the windowed kernels (conv.ts, pool.ts): flat strided index arithmetic
 * with compile-time strides, bounds guards that are emitted only where needed, and the
 * input-position → output-position map through a stride used by the transposed (gradient) kernels.
 * Internal: not re-exported from src/ops/index.ts.
 */
import { KernelBuilder, StridedRef } from '../backend/kernel-builder';

export type Pair = number | [number, number] | readonly [number, number];

/** int | [h, w] → [h, w], checked. */
export function pair(op: string, what: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!Array.isArray(v) && typeof v !== 'number') throw new Error(`${op}: ${what} must be a number or [h, w], got ${JSON.stringify(v)}`);
  if (Array.isArray(v) && v.length !== 2) throw new Error(`${op}: ${what} must be a number or [h, w], got ${JSON.stringify(v)}`);
  if (p.some((d) => !Number.isInteger(d) || d < min)) {
    throw new Error(`${op}: ${what} must be ${min === 0 ? 'non-negative' : 'positive'} integers, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** `e * s`, or nothing where the stride is 0 (a broadcast dim) or the index is a literal 0. */
export function term(e: string | number, s: number): string | null {
  if (s === 0 || e === 0 || e === '0') return null;
  if (typeof e === 'number') return String(e * s);
  return s === 1 ? e : `${e} * ${s}`;
}

export function sumOf(parts: (string | null)[]): string {
  const p = parts.filter((x): x is string => x !== null);
  return p.length ? p.join(' + ') : '0';
}

/** Strides with size-1 dims zeroed (their index is always 0, whatever the stride says). */
export function effStrides(r: StridedRef): number[] {
  return r.strides.map((s, d) => (r.shape[d] === 1 ? 0 : s));
}

/** Reads `ref`'s buffer at a precomputed flat element index (offset already included). */
export function rawAt(kb: KernelBuilder, r: StridedRef, flat: string): string {
  return kb.at({ buffer: r.buffer, shape: [Number.MAX_SAFE_INTEGER], strides: [1], offset: 0 }, [flat]);
}

/** Declares a base index variable `offset + sum(terms)`. */
export function base(kb: KernelBuilder, r: StridedRef, parts: (string | null)[], prefix = 'b'): string {
  return kb.let(sumOf([r.offset ? String(r.offset) : null, ...parts]), prefix);
}

/** floor(a / b) for non-negative integer expressions a and literal b, exact even with approximate division. */
export function floorDiv(a: string, b: number): string {
  return b === 1 ? a : `Math.floor((${a} + 0.5) / ${b})`;
}

/** `e - k` (or `e + -k`), nothing added for k = 0. */
export function minus(e: string, k: number): string {
  return k === 0 ? e : k > 0 ? `${e} - ${k}` : `${e} + ${-k}`;
}

/** `lo <= v && v < hi`, dropping the halves that hold at compile time. */
export function inRange(v: string, lo: boolean, hi: number | null): string | null {
  const c = [lo ? `${v} >= 0` : null, hi !== null ? `${v} < ${hi}` : null].filter(Boolean);
  return c.length ? c.join(' && ') : null;
}

/** Wraps `body` in `if (cond) { ... }` unless cond is null. */
export function guard(kb: KernelBuilder, cond: string | null, body: () => void): void {
  if (cond) kb.emit(`if (${cond}) {`);
  body();
  if (cond) kb.emit('}');
}

/**
 * Output-position `q` (declared) that input position `t` (an expression) maps to through stride s,
 * and the condition that it is a real output position in [0, count).
 */
export function strideBack(kb: KernelBuilder, t: string, s: number, count: number, prefix: string): { q: string; cond: string } {
  if (s === 1) {
    const q = kb.let(t, prefix);
    return { q, cond: `${q} >= 0 && ${q} < ${count}` };
  }
  const tv = kb.let(t, 't');
  // +0.5 keeps floor() exact even where division is approximate (GL)
  const q = kb.let(`Math.floor((${tv} + 0.5) / ${s})`, prefix);
  return { q, cond: `${tv} >= 0 && ${q} * ${s} == ${tv} && ${q} < ${count}` };
}

/**
 * Output positions 0..count-1 along one dim, for a tap at input offset `t0 + q*s` (t0 a kernel
 * expression in [tMin, tMax] across threads): [lo, hi) is the literal range where every thread's
 * tap lies inside [0, size). Loops there run without bounds checks; the edges keep them.
 */
export function splitLoop(
  kb: KernelBuilder,
  count: number,
  s: number,
  tMin: number,
  tMax: number,
  size: number,
  body: (q: string, checked: boolean) => void,
): void {
  const lo = Math.min(count, Math.max(0, Math.ceil(-tMin / s)));
  const hi = Math.max(lo, Math.min(count, Math.floor((size - 1 - tMax) / s) + 1));
  const run = (from: number, to: number, checked: boolean) => {
    if (to <= from) return;
    if (to - from === 1) {
      body(String(from), checked);
      return;
    }
    kb.loop(to - from, (r) => body(from ? kb.let(`${r} + ${from}`, 'q') : r, checked));
  };
  run(0, lo, true);
  run(lo, hi, false);
  run(hi, count, true);
}

/** A 2-D window (conv or pool) over an [N, C, H, W] input: kernel, stride, padding, dilation, output size. */
export interface WindowGeom {
  N: number;
  C: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  kH: number;
  kW: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  /** can a tap fall above/left (lo) or below/right (hi) of the input? */
  checkLoH: boolean;
  checkHiH: boolean;
  checkLoW: boolean;
  checkHiW: boolean;
}

/** `g` with its bounds-check flags: only padding puts a tap before 0; the last window may reach past the end. */
export function withBoundsChecks<G extends Omit<WindowGeom, 'checkLoH' | 'checkHiH' | 'checkLoW' | 'checkHiW'>>(g: G): G & WindowGeom {
  return {
    ...g,
    checkLoH: g.ph > 0,
    checkHiH: (g.OH - 1) * g.sh - g.ph + (g.kH - 1) * g.dh > g.H - 1,
    checkLoW: g.pw > 0,
    checkHiW: (g.OW - 1) * g.sw - g.pw + (g.kW - 1) * g.dw > g.W - 1,
  };
}

/**
 * Walks the taps of the window of output position (oh, ow) that lie inside the input: `body(pos, kh, kw)`
 * with `pos` the flat index expression of the tap (`xb` + row and column terms through strides sH, sW);
 * `onRow(kh)` runs once per window row that is inside, before its columns. Bounds checks only where
 * the geometry needs them.
 */
export function walkWindow(
  kb: KernelBuilder,
  g: WindowGeom,
  at: { xb: string; sH: number; sW: number; oh: string; ow: string },
  body: (pos: string, kh: string, kw: string) => void,
  onRow?: (kh: string) => void,
): void {
  const ih0 = kb.let(minus(term(at.oh, g.sh)!, g.ph), 'ih');
  const iw0 = kb.let(minus(term(at.ow, g.sw)!, g.pw), 'iw');
  kb.loop(g.kH, (kh) => {
    const ih = kb.let(sumOf([ih0, term(kh, g.dh)]), 'ih');
    guard(kb, inRange(ih, g.checkLoH, g.checkHiH ? g.H : null), () => {
      const row = kb.let(sumOf([at.xb, term(ih, at.sH)]), 'xr');
      onRow?.(kh);
      kb.loop(g.kW, (kw) => {
        const iw = kb.let(sumOf([iw0, term(kw, g.dw)]), 'iw');
        guard(kb, inRange(iw, g.checkLoW, g.checkHiW ? g.W : null), () => body(sumOf([row, term(iw, at.sW)]), kh, kw));
      });
    });
  });
}
