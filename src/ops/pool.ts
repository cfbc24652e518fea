/**
 * 2-D pooling with PyTorch semantics (output-size formulas, ceil mode, padding rules): maxPool2d,
 * avgPool2d, adaptiveAvgPool2d. Each forward is one KernelBuilder kernel and each gradient is a
 * kernel that gathers, per input cell, from the (few) windows that contain it.
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { KernelBuilder, lit } from '../backend/kernel-builder';
import { ref, runKernel } from './kernel';
import { fmtShape } from '../tensor/shape';
import { reshape } from './shape';
import {
  Pair,
  pair,
  term,
  sumOf,
  effStrides,
  rawAt,
  base,
  minus,
  guard,
  strideBack,
  floorDiv,
  WindowGeom,
  withBoundsChecks,
  walkWindow,
} from './window-kernel';

export interface MaxPool2dOptions {
  /** defaults to kernelSize */
  stride?: Pair | null;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export interface AvgPool2dOptions {
  /** defaults to kernelSize */
  stride?: Pair | null;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  /** divide every window sum by this instead of the window size */
  divisorOverride?: number | null;
}

/** [C, H, W] inputs run as [1, C, H, W]; anything but 3 or 4 dims is an error. */
function batched(op: string, x: Tensor, f: (x4: Tensor) => Tensor): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: expected a tensor input`);
  if (x.ndim === 4) return f(x);
  if (x.ndim === 3) {
    const y = f(reshape(x, [1, ...x.shape]));
    return reshape(y, y.shape.slice(1));
  }
  throw new Error(`${op}: expected input [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
}

/** PyTorch's pooling_output_shape. */
function poolOut(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  let out = Math.floor((size + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0)) / s) + 1;
  // the last window must start inside the input or its left padding
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

type PoolGeom = WindowGeom;

function poolGeometry(
  op: string,
  x: Tensor,
  kernelSize: Pair,
  stride: Pair | null | undefined,
  padding: Pair,
  dilation: Pair,
  ceil: boolean,
): PoolGeom {
  const [kH, kW] = pair(op, 'kernelSize', kernelSize, 1);
  const [sh, sw] = stride === null || stride === undefined ? [kH, kW] : pair(op, 'stride', stride, 1);
  const [ph, pw] = pair(op, 'padding', padding, 0);
  const [dh, dw] = pair(op, 'dilation', dilation, 1);
  if (ph > Math.floor(kH / 2) || pw > Math.floor(kW / 2)) {
    throw new Error(`${op}: padding ${fmtShape([ph, pw])} should be at most half of the kernel size ${fmtShape([kH, kW])}`);
  }
  const [N, C, H, W] = x.shape;
  const OH = poolOut(H, kH, sh, ph, dh, ceil);
  const OW = poolOut(W, kW, sw, pw, dw, ceil);
  if (OH < 1 || OW < 1) {
    throw new Error(
      `${op}: input ${fmtShape(x.shape)} is too small for kernel ${kH}x${kW} (padding ${fmtShape([ph, pw])}, dilation ${fmtShape([dh, dw])}): output would be ${OH}x${OW}`,
    );
  }
  return withBoundsChecks({ N, C, H, W, OH, OW, kH, kW, sh, sw, ph, pw, dh, dw });
}

/**
 * Visits every tap of the window of output cell (n, c, oh, ow) that lies inside the input:
 * `body(v, kh, kw)` with v the value read. Bounds checks only where padding/ceil mode need them.
 */
function forEachTap(kb: KernelBuilder, g: PoolGeom, x: Tensor, body: (v: string, kh: string, kw: string) => void): void {
  const [n, c, oh, ow] = kb.outIndex();
  const xr = ref(x);
  const [sN, sC, sH, sW] = effStrides(xr);
  const xb = base(kb, xr, [term(n, sN), term(c, sC)], 'xb');
  walkWindow(kb, g, { xb, sH, sW, oh, ow }, (pos, kh, kw) => body(kb.let(rawAt(kb, xr, pos), 'x'), kh, kw));
}

/**
 * Gradient gather: for input cell (n, c, ih, iw), visits every window tap (kh, kw) that reads it,
 * with the output position (oh, ow) of that window: `body(gyValue, oh, ow, kh, kw)`.
 */
function forEachWindowOf(
  kb: KernelBuilder,
  g: PoolGeom,
  gy: Tensor,
  body: (gv: string, oh: string, ow: string, kh: string, kw: string) => void,
): void {
  const [n, c, ih, iw] = kb.outIndex();
  const gr = ref(gy);
  const [sN, sC, sH, sW] = effStrides(gr);
  const gb = base(kb, gr, [term(n, sN), term(c, sC)], 'gb');
  kb.loop(g.kH, (kh) => {
    const h = strideBack(kb, `${minus(ih, -g.ph)} - ${term(kh, g.dh)}`, g.sh, g.OH, 'oh');
    kb.emit(`if (${h.cond}) {`);
    const row = kb.let(sumOf([gb, term(h.q, sH)]), 'gr');
    kb.loop(g.kW, (kw) => {
      const w = strideBack(kb, `${minus(iw, -g.pw)} - ${term(kw, g.dw)}`, g.sw, g.OW, 'ow');
      kb.emit(`if (${w.cond}) {`);
      body(kb.let(rawAt(kb, gr, sumOf([row, term(w.q, sW)])), 'g'), h.q, w.q, kh, kw);
      kb.emit('}');
    });
    kb.emit('}');
  });
}

/* ---- max pooling ---- */

export function maxPool2d(x: Tensor, kernelSize: Pair, opts: MaxPool2dOptions = {}): Tensor {
  return batched('maxPool2d', x, (x4) => {
    const g = poolGeometry('maxPool2d', x4, kernelSize, opts.stride, opts.padding ?? 0, opts.dilation ?? 1, opts.ceilMode ?? false);
    const kb = new KernelBuilder([g.N, g.C, g.OH, g.OW]);
    const best = kb.let('-1e38 * 10.0', 'best');
    // NaN propagates, as in PyTorch
    forEachTap(kb, g, x4, (v) => kb.emit(`if (${v} > ${best} || ${v} != ${v}) { ${best} = ${v}; }`));
    const y = runKernel(kb, best, x4.device);
    const attrs = { kernel: [g.kH, g.kW], strides: [g.sh, g.sw], pads: [g.ph, g.pw], dilations: [g.dh, g.dw], ceilMode: opts.ceilMode ?? false };
    return record(
      y,
      'maxPool2d',
      [x4],
      (gy) => {
        const idx = maxPoolArgmax(g, x4);
        try {
          return [maxPoolGrad(g, gy, idx)];
        } finally {
          idx.dispose();
        }
      },
      [x4],
      attrs,
    );
  });
}

/** Window-local position kh * kW + kw of each window's first maximum (PyTorch's tie rule). */
function maxPoolArgmax(g: PoolGeom, x: Tensor): Tensor {
  const kb = new KernelBuilder([g.N, g.C, g.OH, g.OW]);
  const best = kb.let('-1e38 * 10.0', 'best');
  const arg = kb.let('-1.0', 'arg');
  forEachTap(kb, g, x, (v, kh, kw) => {
    kb.emit(`if (${v} > ${best} || ${v} != ${v} || ${arg} < 0.0) { ${best} = ${v}; ${arg} = ${sumOf([term(kh, g.kW), kw])}; }`);
  });
  return runKernel(kb, arg, x.device);
}

function maxPoolGrad(g: PoolGeom, gy: Tensor, idx: Tensor): Tensor {
  const kb = new KernelBuilder([g.N, g.C, g.H, g.W]);
  const ir = ref(idx);
  const [sN, sC, sH, sW] = effStrides(ir);
  const [n, c] = kb.outIndex();
  const ib = base(kb, ir, [term(n, sN), term(c, sC)], 'ib');
  const acc = kb.let('0.0', 'acc');
  forEachWindowOf(kb, g, gy, (gv, oh, ow, kh, kw) => {
    const a = rawAt(kb, ir, sumOf([ib, term(oh, sH), term(ow, sW)]));
    kb.emit(`if (Math.abs(${a} - (${sumOf([term(kh, g.kW), kw])})) < 0.5) { ${acc} += ${gv}; }`);
  });
  return runKernel(kb, acc, gy.device);
}

/* ---- average pooling ---- */

/** The divisor's factor along one dim for window start `start` (an expression): PyTorch's avg_pool2d rule. */
function avgFactor(start: string, k: number, size: number, p: number, includePad: boolean, overhang: boolean): string {
  if (includePad) {
    // window clipped to the padded input [−p, size + p)
    return overhang ? `(Math.min(${start} + ${k}, ${size + p}) - ${start})` : String(k);
  }
  return `(Math.min(${start} + ${k}, ${size}) - Math.max(${start}, 0))`;
}

export function avgPool2d(x: Tensor, kernelSize: Pair, opts: AvgPool2dOptions = {}): Tensor {
  return batched('avgPool2d', x, (x4) => {
    const g = poolGeometry('avgPool2d', x4, kernelSize, opts.stride, opts.padding ?? 0, 1, opts.ceilMode ?? false);
    const include = opts.countIncludePad ?? true;
    const override = opts.divisorOverride ?? null;
    if (override !== null && (!Number.isFinite(override) || override === 0))
      throw new Error(`avgPool2d: divisorOverride must be a non-zero number, got ${override}`);
    // does a window run past the padded input (ceil mode), or into the padding at all?
    const overH = (g.OH - 1) * g.sh - g.ph + g.kH > g.H + g.ph;
    const overW = (g.OW - 1) * g.sw - g.pw + g.kW > g.W + g.pw;
    const exact = include && !overH && !overW;
    const divisor = (kb: KernelBuilder, oh: string, ow: string): string => {
      if (override !== null) return lit(override);
      if (exact) return lit(g.kH * g.kW);
      const hs = kb.let(minus(term(oh, g.sh)!, g.ph), 'hs');
      const ws = kb.let(minus(term(ow, g.sw)!, g.pw), 'ws');
      const fh = avgFactor(hs, g.kH, g.H, g.ph, include, overH);
      const fw = avgFactor(ws, g.kW, g.W, g.pw, include, overW);
      return kb.let(`${fh} * ${fw}`, 'div');
    };

    const kb = new KernelBuilder([g.N, g.C, g.OH, g.OW]);
    const [, , oh, ow] = kb.outIndex();
    const acc = kb.let('0.0', 'acc');
    forEachTap(kb, g, x4, (v) => kb.emit(`${acc} += ${v};`));
    const y = runKernel(kb, `${acc} / ${divisor(kb, oh, ow)}`, x4.device);

    const attrs = {
      kernel: [g.kH, g.kW],
      strides: [g.sh, g.sw],
      pads: [g.ph, g.pw],
      ceilMode: opts.ceilMode ?? false,
      countIncludePad: include,
      divisorOverride: override,
    };
    return record(
      y,
      'avgPool2d',
      [x4],
      (gy) => {
        const gk = new KernelBuilder([g.N, g.C, g.H, g.W]);
        const gacc = gk.let('0.0', 'acc');
        forEachWindowOf(gk, g, gy, (gv, qh, qw) => gk.emit(`${gacc} += ${gv} / ${divisor(gk, qh, qw)};`));
        return [runKernel(gk, gacc, gy.device)];
      },
      [],
      attrs,
    );
  });
}

/* ---- adaptive average pooling ---- */

/** Window [start, end) of output cell q along a dim: floor(q*size/out), ceil((q+1)*size/out). */
function adaptiveBounds(kb: KernelBuilder, q: string, size: number, out: number): { start: string; end: string } {
  if (size % out === 0) {
    const k = size / out;
    const start = kb.let(term(q, k)!, 'as');
    return { start, end: kb.let(`${start} + ${k}`, 'ae') };
  }
  const start = kb.let(floorDiv(term(q, size)!, out), 'as');
  const end = kb.let(floorDiv(`${term(q, size)} + ${size + out - 1}`, out), 'ae');
  return { start, end };
}

/** Largest adaptive window along a dim, and the most windows one input cell falls in. */
function adaptiveSpans(size: number, out: number): { maxLen: number; maxCover: number } {
  let maxLen = 0;
  const cover = new Array<number>(size).fill(0);
  for (let q = 0; q < out; q++) {
    const s = Math.floor((q * size) / out);
    const e = Math.ceil(((q + 1) * size) / out);
    maxLen = Math.max(maxLen, e - s);
    for (let i = s; i < e; i++) cover[i]++;
  }
  return { maxLen, maxCover: Math.max(...cover) };
}

export function adaptiveAvgPool2d(x: Tensor, outputSize: number | null | readonly [number | null, number | null]): Tensor {
  return batched('adaptiveAvgPool2d', x, (x4) => {
    const [N, C, H, W] = x4.shape;
    const os = typeof outputSize === 'number' || outputSize === null ? [outputSize, outputSize] : outputSize;
    if (!Array.isArray(os) || os.length !== 2)
      throw new Error(`adaptiveAvgPool2d: outputSize must be a number or [h, w], got ${JSON.stringify(outputSize)}`);
    const OH = os[0] ?? H;
    const OW = os[1] ?? W;
    if (![OH, OW].every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(`adaptiveAvgPool2d: outputSize must be positive integers, got ${JSON.stringify(outputSize)}`);
    }
    if (H < 1 || W < 1) throw new Error(`adaptiveAvgPool2d: input ${fmtShape(x4.shape)} has an empty spatial dimension`);
    const sh = adaptiveSpans(H, OH);
    const sw = adaptiveSpans(W, OW);

    const kb = new KernelBuilder([N, C, OH, OW]);
    const [n, c, oh, ow] = kb.outIndex();
    const xr = ref(x4);
    const [sN, sC, sH, sW] = effStrides(xr);
    const hb = adaptiveBounds(kb, oh, H, OH);
    const wb = adaptiveBounds(kb, ow, W, OW);
    const xb = base(kb, xr, [term(n, sN), term(c, sC)], 'xb');
    const acc = kb.let('0.0', 'acc');
    kb.loop(sh.maxLen, (kh) => {
      const ih = kb.let(`${hb.start} + ${kh}`, 'ih');
      guard(kb, H % OH === 0 ? null : `${ih} < ${hb.end}`, () => {
        const row = kb.let(sumOf([xb, term(ih, sH)]), 'xr');
        kb.loop(sw.maxLen, (kw) => {
          const iw = kb.let(`${wb.start} + ${kw}`, 'iw');
          guard(kb, W % OW === 0 ? null : `${iw} < ${wb.end}`, () => kb.emit(`${acc} += ${rawAt(kb, xr, sumOf([row, term(iw, sW)]))};`));
        });
      });
    });
    const y = runKernel(kb, `${acc} / ((${hb.end} - ${hb.start}) * (${wb.end} - ${wb.start}))`, x4.device);

    return record(y, 'adaptiveAvgPool2d', [x4], (gy) => {
      const gk = new KernelBuilder([N, C, H, W]);
      const [gn, gc, ih, iw] = gk.outIndex();
      const gr = ref(gy);
      const [tN, tC, tH, tW] = effStrides(gr);
      const gb = base(gk, gr, [term(gn, tN), term(gc, tC)], 'gb');
      const oh0 = gk.let(floorDiv(term(ih, OH)!, H), 'oh');
      const ow0 = gk.let(floorDiv(term(iw, OW)!, W), 'ow');
      const gacc = gk.let('0.0', 'acc');
      gk.loop(sh.maxCover, (j) => {
        const qh = gk.let(`${oh0} + ${j}`, 'qh');
        const bh = adaptiveBounds(gk, qh, H, OH);
        guard(gk, `${qh} < ${OH} && ${bh.start} <= ${ih} && ${ih} < ${bh.end}`, () => {
          const row = gk.let(sumOf([gb, term(qh, tH)]), 'gr');
          gk.loop(sw.maxCover, (k) => {
            const qw = gk.let(`${ow0} + ${k}`, 'qw');
            const bw = adaptiveBounds(gk, qw, W, OW);
            guard(gk, `${qw} < ${OW} && ${bw.start} <= ${iw} && ${iw} < ${bw.end}`, () => {
              gk.emit(`${gacc} += ${rawAt(gk, gr, sumOf([row, term(qw, tW)]))} / ((${bh.end} - ${bh.start}) * (${bw.end} - ${bw.start}));`);
            });
          });
        });
      });
      return [runKernel(gk, gacc, gy.device)];
    });
  });
}
