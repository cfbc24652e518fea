/**
 * 2-D convolution (torch.nn.functional.conv2d semantics): forward, grad input, grad weight and
 * grad bias, each one KernelBuilder kernel. Every loop bound is a compile-time literal, so a
 * configuration compiles once and is cached; bounds checks are emitted only where padding can
 * actually put a tap outside the input.
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { KernelBuilder } from '../backend/kernel-builder';
import { commonDevice, ref, runKernel } from './kernel';
import { fmtShape } from '../tensor/shape';
import { reshape } from './shape';
import { Pair, pair, term, sumOf, effStrides, rawAt, base, minus, inRange, guard, strideBack, splitLoop, floorDiv } from './window-kernel';

export type { Pair } from './window-kernel';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'same' | 'valid';
  dilation?: Pair;
  groups?: number;
}

interface ConvGeom {
  N: number; C: number; H: number; W: number;
  O: number; Cg: number; Og: number; kH: number; kW: number;
  OH: number; OW: number;
  sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
  /** can a tap fall above/left (lo) or below/right (hi) of the input? */
  checkLoH: boolean; checkHiH: boolean; checkLoW: boolean; checkHiW: boolean;
}

function geometry(x: Tensor, weight: Tensor, bias: Tensor | null | undefined, opts: Conv2dOptions): ConvGeom {
  if (weight.ndim !== 4) throw new Error(`conv2d: expected weight [O, C/groups, kH, kW], got ${fmtShape(weight.shape)}`);
  const [O, Cg, kH, kW] = weight.shape;
  const groups = opts.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`conv2d: groups must be a positive integer, got ${groups}`);
  if (O % groups !== 0) throw new Error(`conv2d: out channels ${O} (weight ${fmtShape(weight.shape)}) must be divisible by groups ${groups}`);
  const Cexp = Cg * groups;
  if (x.ndim !== 4 || x.shape[1] !== Cexp) {
    throw new Error(`conv2d: expected input [N, C, H, W] with C = ${Cexp} (weight ${fmtShape(weight.shape)}, groups ${groups}), got ${fmtShape(x.shape)}`);
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
  return {
    N, C, H, W, O, Cg, Og: O / groups, kH, kW, OH, OW, sh, sw, ph, pw, dh, dw,
    checkLoH: ph > 0,
    checkHiH: (OH - 1) * sh - ph + (kH - 1) * dh > H - 1,
    checkLoW: pw > 0,
    checkHiW: (OW - 1) * sw - pw + (kW - 1) * dw > W - 1,
  };
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
  const y = convForward(g, x, weight, b, device);
  return record(y, 'conv2d', [x, weight, b], (gy) => [
    x.requiresGrad ? convGradInput(g, gy, weight) : null,
    weight.requiresGrad ? convGradWeight(g, gy, x) : null,
    b && b.requiresGrad ? convGradBias(g, gy) : null,
  ], [x, weight]);
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
  const ih0 = kb.let(minus(term(oh, g.sh)!, g.ph), 'ih');
  const iw0 = kb.let(minus(term(ow, g.sw)!, g.pw), 'iw');
  // taps outside, channels inside: the bounds checks depend on the tap only, so the innermost
  // loop (over input channels) is a plain dot product
  kb.loop(g.kH, (kh) => {
    const ih = kb.let(sumOf([ih0, term(kh, g.dh)]), 'ih');
    guard(kb, inRange(ih, g.checkLoH, g.checkHiH ? g.H : null), () => {
      const xrow = kb.let(sumOf([xb, term(ih, xsH)]), 'xr');
      const wrow = kb.let(sumOf([wb, term(kh, wsH)]), 'wr');
      kb.loop(g.kW, (kw) => {
        const iw = kb.let(sumOf([iw0, term(kw, g.dw)]), 'iw');
        guard(kb, inRange(iw, g.checkLoW, g.checkHiW ? g.W : null), () => {
          const xp = kb.let(sumOf([xrow, term(iw, xsW)]), 'xp');
          const wp = kb.let(sumOf([wrow, term(kw, wsW)]), 'wp');
          kb.loop(g.Cg, (c) => {
            kb.emit(`${acc} += ${rawAt(kb, xr, sumOf([xp, term(c, xsC)]))} * ${rawAt(kb, wr, sumOf([wp, term(c, wsC)]))};`);
          });
        });
      });
    });
  });
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
