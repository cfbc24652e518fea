/**
 * 2-D convolution (torch.nn.functional.conv2d semantics): one op, `conv2d`, one autograd node, with
 * two variants chosen inside by backend and shape (`convVariant`):
 *  - 'direct': forward, grad input, grad weight and grad bias, each one KernelBuilder kernel that
 *    walks the taps itself. Every loop bound is a compile-time literal, so a configuration compiles
 *    once and is cached; bounds checks are emitted only where padding can put a tap outside the input.
 *    Used on GL (a GPU has the threads for it), on the cpu backend, and for small convolutions.
 *  - 'im2col' (webasm): the convolution as the tiled matmul of src/ops/matmul.ts. An `unfold`
 *    kernel copies the patches into cols [N, C·kH·kW, OH·OW] (PyTorch's F.unfold layout; per group
 *    [N, G, Cg·kH·kW, P]); then, per batch entry and group, with the weight viewed as [G, Og, Cg·kH·kW]:
 *      y      [N, G, Og, P]    = W @ cols            (bias as the matmul's epilogue; already NCHW)
 *      gcols  [N, G, Cg·k, P]  = W^T @ gy,  gx = fold(gcols)  (col2im as a gather: each input cell
 *                                                              sums the taps that read it)
 *      gW     [G, Og, Cg·k]    = sum_n gy @ cols^T   (batched over n, then a sum over n)
 *    The lanes of the tiled matmul run along output positions P, where cols and gy are contiguous.
 *    A 1x1, stride-1, unpadded convolution needs no unfold/fold (cols is x itself). Large batches are
 *    cut into chunks so one cols buffer stays below COLS_LIMIT cells; cols is kept for the backward.
 *  - 'implicit' (webasm, where the direct WebAssembly kernels run): implicit GEMM with no column matrix
 *    (src/backend/wasm/conv-lowering.ts): the image is copied once into zero-padded phase planes in the
 *    wasm arena, where each patch row is a contiguous run, and the SIMD tile kernels read it in place;
 *    grad input scatters W^T @ gy back into those planes, grad weight is gy against the same runs.
 *    Switched off by `wasmConv: false` / `wasmMatmul: false` (then im2col, the reference it is tested on).
 * `TSNN_CONV=direct|im2col|implicit` forces a variant (tests, bench); im2col runs on every backend when
 * forced, implicit falls back to im2col on webasm without the direct kernels and to direct elsewhere.
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { option } from '../platform/options';
import { noGrad } from '../autograd/grad-mode';
import { KernelBuilder, StridedRef } from '../backend/kernel-builder';
import { backendFor } from '../backend/devices';
import type { DeviceName } from '../backend/device';
import { commonDevice, MAX_LOOP, mapKernel, ref, runKernel } from './kernel';
import { contiguousStrides, fmtShape, numelOf } from '../tensor/shape';
import { cat, contiguous, reshape } from './shape';
import { sum } from './reduce';
import { matmulKernel, MatmulEpilogue, MatmulShape } from './matmul';
import { directMatmul, RowBias, directConv, directConvAvailable } from '../backend/direct-lowering';
import {
  Pair,
  pair,
  term,
  sumOf,
  effStrides,
  rawAt,
  base,
  minus,
  inRange,
  guard,
  strideBack,
  splitLoop,
  floorDiv,
  WindowGeom,
  withBoundsChecks,
  walkWindow,
} from './window-kernel';

export type { Pair } from './window-kernel';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

/** The window geometry plus channels: O output channels, Cg input and Og output channels per group. */
interface ConvGeom extends WindowGeom {
  O: number;
  Cg: number;
  Og: number;
}

function geometry(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions): ConvGeom {
  if (weight.ndim !== 4) throw new Error(`conv2d: expected weight [O, C/groups, kH, kW], got ${fmtShape(weight.shape)}`);
  const [O, Cg, kH, kW] = weight.shape;
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`conv2d: groups must be a positive integer, got ${groups}`);
  if (O % groups !== 0) throw new Error(`conv2d: out channels ${O} (weight ${fmtShape(weight.shape)}) must be divisible by groups ${groups}`);
  const Cexp = Cg * groups;
  if (x.ndim !== 4 || x.shape[1] !== Cexp) {
    throw new Error(
      `conv2d: expected input [N, C, H, W] with C = ${Cexp} (weight ${fmtShape(weight.shape)}, groups ${groups}), got ${fmtShape(x.shape)}`,
    );
  }
  if (bias !== null && bias !== undefined && (bias.ndim !== 1 || bias.shape[0] !== O)) {
    throw new Error(`conv2d: expected bias [${O}] (weight ${fmtShape(weight.shape)}), got ${fmtShape(bias.shape)}`);
  }
  const [N, C, H, W] = x.shape;
  const [sh, sw] = pair('conv2d', 'stride', opts.stride ?? 1, 1);
  const [dh, dw] = pair('conv2d', 'dilation', opts.dilation ?? 1, 1);
  const pad = opts.padding ?? 0;
  // padding as [top, bottom] / [left, right]: 'same' puts the odd extra one at the end, like PyTorch
  let padH: [number, number];
  let padW: [number, number];
  if (pad === 'valid') {
    padH = [0, 0];
    padW = [0, 0];
  } else if (pad === 'same') {
    if (sh !== 1 || sw !== 1) throw new Error(`conv2d: padding='same' is not supported for strided convolutions (stride ${fmtShape([sh, sw])})`);
    const th = dh * (kH - 1);
    const tw = dw * (kW - 1);
    padH = [Math.floor(th / 2), th - Math.floor(th / 2)];
    padW = [Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  } else if (typeof pad === 'string') {
    throw new Error(`conv2d: padding must be a number, [h, w], 'same' or 'valid', got '${pad}'`);
  } else {
    const [ph, pw] = pair('conv2d', 'padding', pad, 0);
    padH = [ph, ph];
    padW = [pw, pw];
  }
  const effH = dh * (kH - 1) + 1;
  const effW = dw * (kW - 1) + 1;
  const inH = H + padH[0] + padH[1];
  const inW = W + padW[0] + padW[1];
  if (inH < effH || inW < effW) {
    throw new Error(
      `conv2d: input ${fmtShape(x.shape)} padded to ${inH}x${inW} is smaller than the kernel ${kH}x${kW}` +
        (dh > 1 || dw > 1 ? ` (dilated to ${effH}x${effW})` : ''),
    );
  }
  const OH = Math.floor((inH - effH) / sh) + 1;
  const OW = Math.floor((inW - effW) / sw) + 1;
  const [ph, pw] = [padH[0], padW[0]];
  return withBoundsChecks({ N, C, H, W, O, Cg, Og: O / groups, kH, kW, OH, OW, sh, sw, ph, pw, dh, dw });
}

/** What the op observer (ONNX export) needs: the far-side padding follows from the output size. */
function convAttrs(g: ConvGeom) {
  return { strides: [g.sh, g.sw], dilations: [g.dh, g.dw], padsBegin: [g.ph, g.pw], group: g.O / g.Og };
}

/**
 * conv2d(x [N, C, H, W], weight [O, C/groups, kH, kW], bias? [O]) → [N, O, OH, OW].
 * An unbatched input [C, H, W] gives [O, OH, OW].
 */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  if (!(x instanceof Tensor) || !(weight instanceof Tensor)) throw new Error('conv2d: expected input and weight tensors');
  if (x.ndim === 3) {
    const [C, H, W] = x.shape;
    const y = conv2d(reshape(x, [1, C, H, W]), weight, bias, opts);
    return reshape(y, y.shape.slice(1));
  }
  const device = commonDevice('conv2d', x, weight, bias);
  const g = geometry(x, weight, bias, opts);
  const b = bias ?? null;
  const variant = convVariant(g, device);
  if (variant === 'implicit') {
    const run = (spec: ReturnType<typeof directConv>, shape: number[]) => Tensor.fromBuffer(backendFor(device).run(spec), shape);
    const y = run(directConv('forward', g, ref(x), ref(weight), b ? ref(b) : null), [g.N, g.O, g.OH, g.OW]);
    return record(
      y,
      'conv2d',
      [x, weight, b],
      (gy) => [
        x.requiresGrad ? run(directConv('gradInput', g, ref(gy), ref(weight)), [g.N, g.C, g.H, g.W]) : null,
        weight.requiresGrad ? run(directConv('gradWeight', g, ref(gy), ref(x)), [g.O, g.Cg, g.kH, g.kW]) : null,
        b && b.requiresGrad ? convGradBias(g, gy) : null,
      ],
      [x, weight],
      convAttrs(g),
    );
  }
  if (variant === 'direct') {
    const y = convForward(g, x, weight, b, device);
    return record(
      y,
      'conv2d',
      [x, weight, b],
      (gy) => [
        x.requiresGrad ? convGradInput(g, gy, weight) : null,
        weight.requiresGrad ? convGradWeight(g, gy, x) : null,
        b && b.requiresGrad ? convGradBias(g, gy) : null,
      ],
      [x, weight],
      convAttrs(g),
    );
  }
  const { y, cols } = im2colForward(g, x, weight, b, device);
  const out = record(
    y,
    'conv2d',
    [x, weight, b],
    (gy) => [
      x.requiresGrad ? im2colGradInput(g, gy, weight) : null,
      weight.requiresGrad ? im2colGradWeight(g, gy, cols) : null,
      b && b.requiresGrad ? convGradBias(g, gy) : null,
    ],
    [x, weight],
    convAttrs(g),
  );
  // the patches are kept only for the weight gradient (cols that are x itself are not ours to free)
  if (!(out.gradFn && weight.requiresGrad)) for (const c of cols) if (c.owned) c.t.dispose();
  return out;
}

type ConvVariant = 'direct' | 'im2col' | 'implicit';

/**
 * Which kernels run a convolution (TSNN_CONV=direct|im2col forces one, on any backend). im2col pays an
 * unfold pass (C·kH·kW·OH·OW cells per image) and, in the backward, a fold pass, for the tiled matmul's
 * faster multiply-adds. That trade is measured per backend (bench/README.md): on webasm im2col is 2-3x
 * faster once a group has 8+ output channels; on the cpu backend (JavaScript) the tiled matmul is not
 * faster than the direct kernels and im2col loses everywhere; GL keeps the direct kernels, which give
 * each output cell its own GPU thread.
 */
function convVariant(g: ConvGeom, device: DeviceName): ConvVariant {
  // nothing to multiply: the direct kernels handle empty shapes
  if (g.N * g.O * g.Cg === 0) return 'direct';
  const forced = option('conv');
  if (forced === 'implicit') return directConvAvailable(device) ? 'implicit' : device === 'webasm' ? 'im2col' : 'direct';
  if (forced === 'direct' || forced === 'im2col') return forced;
  if (device !== 'webasm') return 'direct';
  // the direct WebAssembly implicit GEMM (no column matrix), wherever a group has a few output channels
  if (directConvAvailable(device) && g.Og >= IMPLICIT_MIN_OG) return 'implicit';
  const Kg = g.Cg * g.kH * g.kW;
  const macs = g.N * g.O * g.OH * g.OW * Kg;
  const minOg = g.Og === g.O ? IM2COL_MIN_OG : IM2COL_MIN_OG_GROUPED;
  return Kg >= IM2COL_MIN_K && g.Og >= minOg && macs >= IM2COL_MIN_MACS ? 'im2col' : 'direct';
}

function convForward(g: ConvGeom, x: Tensor, w: Tensor, bias: Tensor | null, device: Tensor['device']): Tensor {
  const kb = new KernelBuilder([g.N, g.O, g.OH, g.OW]);
  const [n, o, oh, ow] = kb.outIndex();
  const xr = ref(x);
  const wr = ref(w);
  const [xsN, xsC, xsH, xsW] = effStrides(xr);
  const [wsO, wsC, wsH, wsW] = effStrides(wr);
  const acc = kb.let(bias ? kb.at(ref(bias), [o]) : '0.0', 'acc');
  const grp = g.Og === g.O ? null : kb.let(floorDiv(o, g.Og), 'grp');
  const xb = base(kb, xr, [term(n, xsN), grp ? term(grp, g.Cg * xsC) : null], 'xb');
  const wb = base(kb, wr, [term(o, wsO)], 'wb');
  // taps outside, channels inside: the bounds checks depend on the tap only, so the innermost
  // loop (over input channels) is a plain dot product
  let wrow = '';
  walkWindow(
    kb,
    g,
    { xb, sH: xsH, sW: xsW, oh, ow },
    (pos, _kh, kw) => {
      const xp = kb.let(pos, 'xp');
      const wp = kb.let(sumOf([wrow, term(kw, wsW)]), 'wp');
      kb.loop(g.Cg, (c) => {
        kb.emit(`${acc} += ${rawAt(kb, xr, sumOf([xp, term(c, xsC)]))} * ${rawAt(kb, wr, sumOf([wp, term(c, wsC)]))};`);
      });
    },
    (kh) => (wrow = kb.let(sumOf([wb, term(kh, wsH)]), 'wr')),
  );
  return runKernel(kb, acc, device);
}

/** grad input: a transposed convolution of gy with the weight. */
function convGradInput(g: ConvGeom, gy: Tensor, w: Tensor): Tensor {
  const kb = new KernelBuilder([g.N, g.C, g.H, g.W]);
  const [n, c, ih, iw] = kb.outIndex();
  const gr = ref(gy);
  const wr = ref(w);
  const [gsN, gsO, gsH, gsW] = effStrides(gr);
  const [wsO, wsC, wsH, wsW] = effStrides(wr);
  const acc = kb.let('0.0', 'acc');
  let gb: string;
  let wb: string;
  if (g.Og === g.O) {
    gb = base(kb, gr, [term(n, gsN)], 'gb');
    wb = base(kb, wr, [term(c, wsC)], 'wb');
  } else {
    const grp = kb.let(floorDiv(c, g.Cg), 'grp');
    const cl = kb.let(`${c} - ${grp} * ${g.Cg}`, 'cl');
    gb = base(kb, gr, [term(n, gsN), term(grp, g.Og * gsO)], 'gb');
    wb = base(kb, wr, [term(grp, g.Og * wsO), term(cl, wsC)], 'wb');
  }
  kb.loop(g.kH, (kh) => {
    const h = strideBack(kb, `${minus(ih, -g.ph)} - ${term(kh, g.dh)}`, g.sh, g.OH, 'oh');
    kb.emit(`if (${h.cond}) {`);
    const grow = kb.let(sumOf([gb, term(h.q, gsH)]), 'gr');
    const wrow = kb.let(sumOf([wb, term(kh, wsH)]), 'wr');
    kb.loop(g.kW, (kw) => {
      const wv = strideBack(kb, `${minus(iw, -g.pw)} - ${term(kw, g.dw)}`, g.sw, g.OW, 'ow');
      kb.emit(`if (${wv.cond}) {`);
      const gp = kb.let(sumOf([grow, term(wv.q, gsW)]), 'gp');
      const wp = kb.let(sumOf([wrow, term(kw, wsW)]), 'wp');
      kb.loop(g.Og, (o) => {
        kb.emit(`${acc} += ${rawAt(kb, gr, sumOf([gp, term(o, gsO)]))} * ${rawAt(kb, wr, sumOf([wp, term(o, wsO)]))};`);
      });
      kb.emit('}');
    });
    kb.emit('}');
  });
  return runKernel(kb, acc, gy.device);
}

/** grad weight: correlates the input with gy over batch and output positions. */
function convGradWeight(g: ConvGeom, gy: Tensor, x: Tensor): Tensor {
  const kb = new KernelBuilder([g.O, g.Cg, g.kH, g.kW]);
  const [o, cl, kh, kw] = kb.outIndex();
  const gr = ref(gy);
  const xr = ref(x);
  const [gsN, gsO, gsH, gsW] = effStrides(gr);
  const [xsN, xsC, xsH, xsW] = effStrides(xr);
  const acc = kb.let('0.0', 'acc');
  const c = g.Og === g.O ? cl : kb.let(`${floorDiv(o, g.Og)} * ${g.Cg} + ${cl}`, 'c');
  const gb = base(kb, gr, [term(o, gsO)], 'gb');
  const xb = base(kb, xr, [term(c, xsC)], 'xb');
  const ih0 = kb.let(minus(term(kh, g.dh)!, g.ph), 'ih');
  const iw0 = kb.let(minus(term(kw, g.dw)!, g.pw), 'iw');
  kb.loop(g.N, (n) => {
    const gn = kb.let(sumOf([gb, term(n, gsN)]), 'gn');
    const xn = kb.let(sumOf([xb, term(n, xsN)]), 'xn');
    // interior rows/columns (valid for every tap) loop without bounds checks
    splitLoop(kb, g.OH, g.sh, -g.ph, (g.kH - 1) * g.dh - g.ph, g.H, (oh, checkH) => {
      const ih = kb.let(sumOf([ih0, term(oh, g.sh)]), 'ih');
      guard(kb, checkH ? inRange(ih, g.checkLoH, g.checkHiH ? g.H : null) : null, () => {
        const grow = kb.let(sumOf([gn, term(oh, gsH)]), 'gr');
        const xrow = kb.let(sumOf([xn, term(ih, xsH)]), 'xr');
        splitLoop(kb, g.OW, g.sw, -g.pw, (g.kW - 1) * g.dw - g.pw, g.W, (ow, checkW) => {
          const iw = kb.let(sumOf([iw0, term(ow, g.sw)]), 'iw');
          guard(kb, checkW ? inRange(iw, g.checkLoW, g.checkHiW ? g.W : null) : null, () => {
            kb.emit(`${acc} += ${rawAt(kb, gr, sumOf([grow, term(ow, gsW)]))} * ${rawAt(kb, xr, sumOf([xrow, term(iw, xsW)]))};`);
          });
        });
      });
    });
  });
  return runKernel(kb, acc, gy.device);
}

/** grad bias: gy summed over batch and positions. */
function convGradBias(g: ConvGeom, gy: Tensor): Tensor {
  const kb = new KernelBuilder([g.O]);
  const [o] = kb.outIndex();
  const gr = ref(gy);
  const [gsN, gsO, gsH, gsW] = effStrides(gr);
  const acc = kb.let('0.0', 'acc');
  const gb = base(kb, gr, [term(o, gsO)], 'gb');
  kb.loop(g.N, (n) => {
    const gn = kb.let(sumOf([gb, term(n, gsN)]), 'gn');
    kb.loop(g.OH, (oh) => {
      const grow = kb.let(sumOf([gn, term(oh, gsH)]), 'gr');
      kb.loop(g.OW, (ow) => kb.emit(`${acc} += ${rawAt(kb, gr, sumOf([grow, term(ow, gsW)]))};`));
    });
  });
  return runKernel(kb, acc, gy.device);
}

// ---- im2col: the convolution as the tiled matmul -----------------------------------------------------

/**
 * Auto-selection thresholds (convVariant), from webasm measurements (bench/README.md, "Convolution"):
 * the unfold costs the same whatever the output channels, so it pays off once a group has >= 8 of them
 * (16 with groups: the matmul's 2-D batch index costs more there); below ~2^18 multiply-adds both take
 * about the same fraction of a millisecond.
 */
const IM2COL_MIN_K = 4;
/** below this, most of the 4-row tile of the implicit GEMM would be idle (depthwise: 1 of 4) */
const IMPLICIT_MIN_OG = 2;
const IM2COL_MIN_OG = 8;
const IM2COL_MIN_OG_GROUPED = 16;
const IM2COL_MIN_MACS = 1 << 18;
/**
 * The most cells one unfold writes; larger batches go in chunks. Bounds memory, and keeps flat-index
 * arithmetic exact where a kernel language computes it in f32 (below 2^24).
 */
const COLS_LIMIT = 1 << 23;

/**
 * One batch chunk's patches (images n0..n0+nc-1): `t` is the chunk's unfold output [nc, C, kH, kW, OH, OW],
 * or, for a 1x1 convolution, the whole input (`whole`: x or a contiguous copy of it).
 */
interface Cols {
  t: Tensor;
  /** made here (freed when the backward no longer needs it) */
  owned: boolean;
  whole: boolean;
  n0: number;
  nc: number;
}

/** `r` with dim d cut to [s, e). */
function sliceRef(r: StridedRef, d: number, s: number, e: number): StridedRef {
  const shape = [...r.shape];
  shape[d] = e - s;
  return { ...r, shape, offset: r.offset + s * r.strides[d] };
}

function transposeRef(r: StridedRef): StridedRef {
  const n = r.shape.length;
  const shape = [...r.shape];
  const strides = [...r.strides];
  [shape[n - 2], shape[n - 1]] = [shape[n - 1], shape[n - 2]];
  [strides[n - 2], strides[n - 1]] = [strides[n - 1], strides[n - 2]];
  return { ...r, shape, strides };
}

/** `r` reshaped to `shape` without a copy (PyTorch's view rule), or null where its strides do not allow it. */
function viewRef(r: StridedRef, shape: number[]): StridedRef | null {
  if (numelOf(shape) !== numelOf(r.shape)) throw new Error(`internal: conv2d view ${fmtShape(r.shape)} -> ${fmtShape(shape)}`);
  if (numelOf(shape) === 0) return { ...r, shape, strides: contiguousStrides(shape) };
  const strides = new Array<number>(shape.length);
  let v = shape.length - 1;
  let chunkBase = r.strides[r.shape.length - 1];
  let tNumel = 1;
  let vNumel = 1;
  for (let d = r.shape.length - 1; d >= 0; d--) {
    tNumel *= r.shape[d];
    // the end of a run of dims that are contiguous with each other
    if (d === 0 || (r.shape[d - 1] !== 1 && r.strides[d - 1] !== tNumel * chunkBase)) {
      while (v >= 0 && (vNumel < tNumel || shape[v] === 1)) {
        strides[v] = vNumel * chunkBase;
        vNumel *= shape[v];
        v--;
      }
      if (vNumel !== tNumel) return null;
      if (d > 0) {
        chunkBase = r.strides[d - 1];
        tNumel = 1;
        vNumel = 1;
      }
    }
  }
  return v === -1 ? { ...r, shape, strides } : null;
}

/** `t` viewed as `shape` (same elements); through a contiguous copy (pushed on `temps`) where no view exists. */
function viewOf(t: Tensor, shape: number[], temps: Tensor[]): StridedRef {
  const v = viewRef(ref(t), shape);
  if (v) return v;
  const c = noGrad(() => contiguous(t));
  temps.push(c);
  return viewRef(ref(c), shape)!;
}

interface ImGeom {
  G: number;
  Kg: number;
  P: number;
  /** [nc] or [nc, G]: the matmuls' batch dims */
  batch: (nc: number) => number[];
  /** shape with the group dim inserted after the batch dim where there is more than one group */
  grouped: (nc: number, inner: number[]) => number[];
  pointwise: boolean;
  chunks: [number, number][];
}

function imGeom(g: ConvGeom): ImGeom {
  const G = g.O / g.Og;
  const Kg = g.Cg * g.kH * g.kW;
  const P = g.OH * g.OW;
  const perImage = g.C * g.kH * g.kW * P;
  // convCols (TSNN_CONV_COLS): a smaller limit, for tests of the chunked path
  const limit = Math.min(COLS_LIMIT, option('convCols') ?? COLS_LIMIT);
  const step = Math.max(1, Math.floor(limit / Math.max(perImage, 1)));
  const chunks: [number, number][] = [];
  for (let n0 = 0; n0 < g.N; n0 += step) chunks.push([n0, Math.min(step, g.N - n0)]);
  return {
    G,
    Kg,
    P,
    batch: (nc) => (G > 1 ? [nc, G] : [nc]),
    grouped: (nc, inner) => (G > 1 ? [nc, G, ...inner] : [nc, ...inner]),
    pointwise: g.kH === 1 && g.kW === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0 && g.OH === g.H && g.OW === g.W,
    chunks,
  };
}

/**
 * a @ b through matmulKernel (the tiled variant on cpu/webasm); a reduction longer than MAX_LOOP is
 * summed over chunks of it. `epilogue` must be additive (a bias): it is applied to the last chunk.
 */
function mm(a: StridedRef, b: StridedRef, s: MatmulShape, epilogue?: MatmulEpilogue, bias?: RowBias): Tensor {
  // a direct lowering (webasm: packed SIMD gemm) where the backend has one; the bias is its row epilogue
  const direct = directMatmul(s.device, a, b, s, bias);
  if (direct) {
    direct.meta = undefined; // as below: not a plain matmul of its output's shape
    return Tensor.fromBuffer(backendFor(s.device).run(direct), [...s.batch, s.M, s.N]);
  }
  if (s.K <= MAX_LOOP) {
    const kb = matmulKernel(a, b, s, { epilogue });
    // not a plain matmul of its output's shape (a conv's [N, G, Og, P] read as [N, O, OH, OW]): the graph
    // compiler must not re-emit it with an epilogue of its own
    kb.meta = undefined;
    return runKernel(kb, kb.result, s.device);
  }
  let acc: Tensor | null = null;
  for (let k0 = 0; k0 < s.K; k0 += MAX_LOOP) {
    const k1 = Math.min(k0 + MAX_LOOP, s.K);
    const part = mm(
      sliceRef(a, a.shape.length - 1, k0, k1),
      sliceRef(b, b.shape.length - 2, k0, k1),
      { ...s, K: k1 - k0 },
      k1 === s.K ? epilogue : undefined,
    );
    if (!acc) acc = part;
    else {
      const next: Tensor = mapKernel('conv2d', [acc, part], ([u, v]) => `${u} + ${v}`);
      acc.dispose();
      part.dispose();
      acc = next;
    }
  }
  return acc!;
}

/** Patches of images n0..n0+nc-1: [nc, C, kH, kW, OH, OW], zero where a tap falls in the padding. */
function unfold(g: ConvGeom, x: Tensor, n0: number, nc: number): Tensor {
  const shape = [nc, g.C, g.kH, g.kW, g.OH, g.OW];
  // host backends: a thread grid [OH·OW, C·kH·kW, nc]; the lanes run along output positions and only
  // the position is divided out per lane (the channel/tap split of thread.y is lane-uniform). GL: flat.
  let n: string, c: string, kh: string, kw: string, oh: string, ow: string;
  let kb: KernelBuilder;
  if (backendFor(x.device).supportsTiles) {
    kb = new KernelBuilder(shape, { grid: [g.OH * g.OW, g.C * g.kH * g.kW, nc] });
    n = kb.threadId('z');
    [c, kh, kw] = kb.decompose(kb.threadId('y'), [g.C, g.kH, g.kW]);
    oh = kb.let(floorDiv(kb.threadId('x'), g.OW), 'oh');
    ow = kb.let(`${kb.threadId('x')} - ${oh} * ${g.OW}`, 'ow');
  } else {
    kb = new KernelBuilder(shape);
    [n, c, kh, kw, oh, ow] = kb.outIndex();
  }
  const xr = sliceRef(ref(x), 0, n0, n0 + nc);
  const ih = kb.let(sumOf([minus(term(oh, g.sh)!, g.ph), term(kh, g.dh)]), 'ih');
  const iw = kb.let(sumOf([minus(term(ow, g.sw)!, g.pw), term(kw, g.dw)]), 'iw');
  const conds = [inRange(ih, g.checkLoH, g.checkHiH ? g.H : null), inRange(iw, g.checkLoW, g.checkHiW ? g.W : null)].filter(
    (c): c is string => c !== null,
  );
  const v = kb.let('0.0', 'v');
  guard(kb, conds.length ? conds.join(' && ') : null, () => kb.emit(`${v} = ${kb.at(xr, [n, c, ih, iw])};`));
  return runKernel(kb, v, x.device);
}

/**
 * col2im as a gather: gx[n, c, ih, iw] = sum over the taps (kh, kw) whose output position (oh, ow)
 * reads (ih, iw) of gcols[n, c, kh, kw, oh, ow]. gcols is contiguous [nc, C·kH·kW, OH·OW].
 */
function fold(g: ConvGeom, gcols: Tensor, nc: number): Tensor {
  const kb = new KernelBuilder([nc, g.C, g.H, g.W]);
  const [n, c, ih, iw] = kb.outIndex();
  const shape = [nc, g.C, g.kH, g.kW, g.OH, g.OW];
  const gr: StridedRef = { buffer: gcols.storage.buffer, shape, strides: contiguousStrides(shape), offset: gcols.offset };
  const [sN, sC, sKh, sKw, sOh, sOw] = effStrides(gr);
  const acc = kb.let('0.0', 'acc');
  const gb = base(kb, gr, [term(n, sN), term(c, sC)], 'gb');
  kb.loop(g.kH, (kh) => {
    const h = strideBack(kb, `${minus(ih, -g.ph)} - ${term(kh, g.dh)}`, g.sh, g.OH, 'oh');
    kb.emit(`if (${h.cond}) {`);
    const row = kb.let(sumOf([gb, term(kh, sKh), term(h.q, sOh)]), 'gr');
    kb.loop(g.kW, (kw) => {
      const wv = strideBack(kb, `${minus(iw, -g.pw)} - ${term(kw, g.dw)}`, g.sw, g.OW, 'ow');
      kb.emit(`if (${wv.cond}) {`);
      kb.emit(`${acc} += ${rawAt(kb, gr, sumOf([row, term(kw, sKw), term(wv.q, sOw)]))};`);
      kb.emit('}');
    });
    kb.emit('}');
  });
  return runKernel(kb, acc, gcols.device);
}

/** The chunk's patches viewed as the matmul's right operand [nc, G?, Kg, P]. */
function colsRef(g: ConvGeom, ig: ImGeom, c: Cols): StridedRef {
  const shape = ig.grouped(c.nc, [ig.Kg, ig.P]);
  if (!c.whole) return { buffer: c.t.storage.buffer, shape, strides: contiguousStrides(shape), offset: c.t.offset };
  return viewRef(sliceRef(ref(c.t), 0, c.n0, c.n0 + c.nc), shape)!;
}

/** The weight viewed as [G?, Og, Kg]. */
function weightRef(g: ConvGeom, ig: ImGeom, w: Tensor, temps: Tensor[]): StridedRef {
  return viewOf(w, ig.G > 1 ? [ig.G, g.Og, ig.Kg] : [g.Og, ig.Kg], temps);
}

/** `t` reshaped (a view of a kernel's contiguous output), letting go of the base. */
function asShape(t: Tensor, shape: number[]): Tensor {
  const v = noGrad(() => reshape(t, shape));
  if (v !== t) t.dispose();
  return v;
}

/** Concatenates per-chunk results along the batch dim (nothing to do for one chunk). */
function joinChunks(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const y = noGrad(() => cat(parts, 0));
  for (const p of parts) p.dispose();
  return y;
}

function im2colForward(g: ConvGeom, x: Tensor, w: Tensor, bias: Tensor | null, device: DeviceName): { y: Tensor; cols: Cols[] } {
  const ig = imGeom(g);
  const temps: Tensor[] = [];
  const wr = weightRef(g, ig, w, temps);
  const br = bias ? ref(bias) : null;
  const epilogue: MatmulEpilogue | undefined = br
    ? (acc, kb, out) => {
        const m = out[out.length - 2];
        const o = ig.G > 1 ? `${out[out.length - 3]} * ${g.Og} + ${m}` : m;
        return `${acc} + ${kb.at(br, [o])}`;
      }
    : undefined;
  let xs = x;
  if (ig.pointwise && !viewRef(ref(x), ig.grouped(g.N, [ig.Kg, ig.P]))) {
    xs = noGrad(() => contiguous(x));
  }
  const cols: Cols[] = [];
  const ys: Tensor[] = [];
  for (const [n0, nc] of ig.chunks) {
    const c: Cols = ig.pointwise ? { t: xs, owned: xs !== x, whole: true, n0, nc } : { t: unfold(g, x, n0, nc), owned: true, whole: false, n0, nc };
    cols.push(c);
    const y = mm(
      wr,
      colsRef(g, ig, c),
      { batch: ig.batch(nc), M: g.Og, K: ig.Kg, N: ig.P, device },
      epilogue,
      br ? { ref: br, groups: ig.G } : undefined,
    );
    ys.push(asShape(y, [nc, g.O, g.OH, g.OW]));
  }
  for (const t of temps) t.dispose();
  return { y: joinChunks(ys), cols };
}

/** gy viewed as [N, G?, Og, P] (a copy only where its strides do not merge OH and OW). */
function gradOutRef(g: ConvGeom, ig: ImGeom, gy: Tensor, temps: Tensor[]): StridedRef {
  return viewOf(gy, ig.grouped(g.N, [g.Og, ig.P]), temps);
}

function im2colGradInput(g: ConvGeom, gy: Tensor, w: Tensor): Tensor {
  const ig = imGeom(g);
  const temps: Tensor[] = [];
  const wt = transposeRef(weightRef(g, ig, w, temps));
  const gr = gradOutRef(g, ig, gy, temps);
  const parts: Tensor[] = [];
  for (const [n0, nc] of ig.chunks) {
    const gcols = mm(wt, sliceRef(gr, 0, n0, n0 + nc), { batch: ig.batch(nc), M: ig.Kg, K: g.Og, N: ig.P, device: gy.device });
    if (ig.pointwise) parts.push(asShape(gcols, [nc, g.C, g.H, g.W]));
    else {
      parts.push(fold(g, gcols, nc));
      gcols.dispose();
    }
  }
  for (const t of temps) t.dispose();
  return joinChunks(parts);
}

function im2colGradWeight(g: ConvGeom, gy: Tensor, cols: Cols[]): Tensor {
  const ig = imGeom(g);
  const temps: Tensor[] = [];
  const gr = gradOutRef(g, ig, gy, temps);
  let acc: Tensor | null = null;
  for (const c of cols) {
    const { n0, nc } = c;
    // [nc, G?, Og, Kg]: one product per image, reduced over its positions; then summed over the images
    const part = mm(sliceRef(gr, 0, n0, n0 + nc), transposeRef(colsRef(g, ig, c)), {
      batch: ig.batch(nc),
      M: g.Og,
      K: ig.P,
      N: ig.Kg,
      device: gy.device,
    });
    let s: Tensor;
    if (nc > 1) {
      s = sum(part, 0);
      part.dispose();
    } else s = asShape(part, part.shape.slice(1));
    if (!acc) acc = s;
    else {
      const next: Tensor = mapKernel('conv2d', [acc, s], ([u, v]) => `${u} + ${v}`);
      acc.dispose();
      s.dispose();
      acc = next;
    }
  }
  for (const t of temps) t.dispose();
  return asShape(acc!, [g.O, g.Cg, g.kH, g.kW]);
}
