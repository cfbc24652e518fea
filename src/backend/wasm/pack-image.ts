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

/** Element strides of a 4-D [N, C, H, W] view and its offset. */
export interface View4 {
  data: Float32Array;
  offset: number;
  strides: readonly number[];
}

/**
 * Visits every input cell (n fixed) that some tap reads: fn(src index, dst float index in the image
 * block at `at`), row run by row run. The padding cells are never visited (they stay as they are).
 */
function eachCell(s: ConvShape, g: ImageGrid, x: View4, n: number, at: number, fn: (src: number, dst: number, count: number, sStep: number) => void): void {
  const [sN, sC, sH, sW] = x.strides;
  for (let c = 0; c < s.C; c++) {
    const cSrc = x.offset + n * sN + c * sC;
    const cDst = at + c * g.chan;
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
        if (count <= 0) continue;
        fn(cSrc + ih * sH + iw0 * sW, cDst + (a * s.sw + b) * g.plane + i * g.Wq + j0, count, s.sw * sW);
      }
    }
  }
}

/** Image n of x into the phase planes at float `at` of `dst` (padding cells untouched: zero them once). */
export function packImage(dst: Float32Array, at: number, s: ConvShape, g: ImageGrid, x: View4, n: number): void {
  const src = x.data;
  eachCell(s, g, x, n, at, (si, di, count, step) => {
    if (step === 1) for (let t = 0; t < count; t++) dst[di + t] = src[si + t];
    else for (let t = 0; t < count; t++) dst[di + t] = src[si + t * step];
  });
}

/** The inverse: gx[n] (contiguous [C, H, W] at `outAt`) from the planes; cells no tap reads get 0. */
export function unpackImage(src: Float32Array, at: number, s: ConvShape, g: ImageGrid, out: Float32Array, outAt: number): void {
  const HW = s.H * s.W;
  out.fill(0, outAt, outAt + s.C * HW);
  eachCell(s, g, { data: out, offset: outAt, strides: [s.C * HW, HW, s.W, 1] }, 0, at, (oi, si, count, step) => {
    for (let t = 0; t < count; t++) out[oi + t * step] = src[si + t];
  });
}

/** gy[n] (any strides) into grid rows [O, Pt] at `at`: cell (o, oh*Wq + ow); the other cells untouched (zero). */
export function packGrad(dst: Float32Array, at: number, s: ConvShape, g: ImageGrid, gy: View4, n: number): void {
  const [sN, sO, sH, sW] = gy.strides;
  const src = gy.data;
  for (let o = 0; o < s.O; o++) {
    const oSrc = gy.offset + n * sN + o * sO;
    const oDst = at + o * g.Pt;
    for (let oh = 0; oh < s.OH; oh++) {
      const si = oSrc + oh * sH;
      const di = oDst + oh * g.Wq;
      if (sW === 1) for (let ow = 0; ow < s.OW; ow++) dst[di + ow] = src[si + ow];
      else for (let ow = 0; ow < s.OW; ow++) dst[di + ow] = src[si + ow * sW];
    }
  }
}
