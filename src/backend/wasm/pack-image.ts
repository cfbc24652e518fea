/**
 * The image layout of the implicit-GEMM convolution (conv-lowering.ts): no column matrix, just the input
 * copied once into the arena as zero-padded *phase planes*, where every im2col row is a contiguous run.
 *
 * Padded input row r = ih + ph goes to phase a = r mod sh, row r div sh (columns alike with sw, pw): plane
 * (a, b) holds xpad[i*sh + a, j*sw + b] as Hq x Wq. Tap (kh, kw) at output (oh, ow) reads
 * xpad[oh*sh + kh*dh, ow*sw + kw*dw] = plane(kh*dh mod sh, kw*dw mod sw)[oh + kh*dh div sh, ow + kw*dw div sw],
 * so over the output grid p = oh*Wq + ow (ow < Wq: the columns past OW are computed and dropped) patch
 * row k = (c, kh, kw) is img[koff[k] + p]. With stride 1 there is one plane: the padded image itself.
 */
import { NR } from './conv-kernel';

/** What the layout needs of a convolution (src/ops/conv.ts's geometry). */
export interface ConvShape {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  Cg: number;
  Og: number;
  kH: number;
  kW: number;
  OH: number;
  OW: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
}

export interface ImageGrid {
  Hq: number;
  Wq: number;
  /** floats of one plane, of one channel's sh*sw planes, of one image (all channels) */
  plane: number;
  chan: number;
  image: number;
  /** floats past the image that reads at the far grid columns may touch (kept zero) */
  slack: number;
  /** grid positions OH*Wq, rounded up to whole 8-column tiles */
  Pt: number;
  /** taps per group Cg*kH*kW */
  Kg: number;
  /** byte offset of each tap's run from its group's first channel; `pad` entries more (copies of entry 0) */
  koff: Int32Array;
}

export function imageGrid(s: ConvShape, pad = 0): ImageGrid {
  const Hq = s.OH + Math.floor(((s.kH - 1) * s.dh) / s.sh);
  const Wq = s.OW + Math.floor(((s.kW - 1) * s.dw) / s.sw);
  const plane = Hq * Wq;
  const chan = s.sh * s.sw * plane;
  const Pt = Math.ceil((s.OH * Wq) / NR) * NR;
  const Kg = s.Cg * s.kH * s.kW;
  const koff = new Int32Array(Kg + pad);
  let k = 0;
  for (let c = 0; c < s.Cg; c++)
    for (let kh = 0; kh < s.kH; kh++)
      for (let kw = 0; kw < s.kW; kw++) {
        const a = (kh * s.dh) % s.sh;
        const b = (kw * s.dw) % s.sw;
        const off = c * chan + (a * s.sw + b) * plane + Math.floor((kh * s.dh) / s.sh) * Wq + Math.floor((kw * s.dw) / s.sw);
        koff[k++] = off * 4;
      }
  for (; k < Kg + pad; k++) koff[k] = koff[0];
  // the farthest read: a tap's run ends at most Wq + NR floats past its plane, plus one vector
  return { Hq, Wq, plane, chan, image: s.C * chan, slack: Wq + 2 * NR + 8, Pt, Kg, koff };
}

/**
 * The row runs one image's copy is made of, the same for every image: run t copies `count[t]` cells from
 * source element `src[t]` (+ the image's base, every `step` elements) to float `dst[t]` of the block.
 */
export interface Runs {
  src: Int32Array;
  dst: Int32Array;
  count: Int32Array;
  step: number;
}

function runs(list: number[][], step: number): Runs {
  return {
    src: Int32Array.from(list, (r) => r[0]),
    dst: Int32Array.from(list, (r) => r[1]),
    count: Int32Array.from(list, (r) => r[2]),
    step,
  };
}

/**
 * The input cells some tap reads, as runs from a [C, H, W] image with element strides [sC, sH, sW] into
 * the phase planes. The padding cells are in no run (they stay as they are: zero them once).
 */
export function imageRuns(s: ConvShape, g: ImageGrid, sC: number, sH: number, sW: number): Runs {
  const list: number[][] = [];
  for (let c = 0; c < s.C; c++)
    for (let ih = 0; ih < s.H; ih++) {
      const r = ih + s.ph;
      const i = Math.floor(r / s.sh);
      if (i >= g.Hq) break;
      const a = r - i * s.sh;
      for (let b = 0; b < s.sw; b++) {
        const iw0 = (((b - s.pw) % s.sw) + s.sw) % s.sw;
        if (iw0 >= s.W) continue;
        const j0 = (iw0 + s.pw - b) / s.sw;
        const count = Math.min(Math.ceil((s.W - iw0) / s.sw), g.Wq - j0);
        if (count > 0) list.push([c * sC + ih * sH + iw0 * sW, c * g.chan + (a * s.sw + b) * g.plane + i * g.Wq + j0, count]);
      }
    }
  return runs(list, s.sw * sW);
}

/** gy's cells [O, OH, OW] (element strides sO, sH, sW) as runs into grid rows [O, Pt]: cell (o, oh*Wq + ow). */
export function gradRuns(s: ConvShape, g: ImageGrid, sO: number, sH: number, sW: number): Runs {
  const list: number[][] = [];
  for (let o = 0; o < s.O; o++) for (let oh = 0; oh < s.OH; oh++) list.push([o * sO + oh * sH, o * g.Pt + oh * g.Wq, s.OW]);
  return runs(list, sW);
}

/** Copies the runs from `src` (image base `base`) into `dst` at float `at`. */
export function gather(dst: Float32Array, at: number, src: Float32Array, base: number, r: Runs): void {
  const { step } = r;
  for (let t = 0; t < r.src.length; t++) {
    const si = base + r.src[t];
    const di = at + r.dst[t];
    const n = r.count[t];
    if (step === 1) for (let q = 0; q < n; q++) dst[di + q] = src[si + q];
    else for (let q = 0; q < n; q++) dst[di + q] = src[si + q * step];
  }
}

/** The inverse of `gather`: the runs' cells of `src` (at float `at`) back to `dst` (image base `base`). */
export function scatter(dst: Float32Array, base: number, src: Float32Array, at: number, r: Runs): void {
  const { step } = r;
  for (let t = 0; t < r.src.length; t++) {
    const di = base + r.src[t];
    const si = at + r.dst[t];
    const n = r.count[t];
    if (step === 1) for (let q = 0; q < n; q++) dst[di + q] = src[si + q];
    else for (let q = 0; q < n; q++) dst[di + q * step] = src[si + q];
  }
}
