/**
 * Builds gpu.js kernel sources. Every op's forward (and, through ops, every backward) is written
 * against this one builder, so a kernel is defined once and gpu.js transpiles it for each backend
 * (JS for cpu, WebAssembly+SIMD for webasm, GLSL for headless-gl, WGSL for webgpu).
 *
 * A kernel has a flat 1-D output of numel(outShape) cells; `this.thread.x` is the row-major index.
 * Inputs are strided views: a read bakes in shape/strides/offset, so transposes, slices and
 * broadcasts cost nothing. Scalars travel as kernel arguments, so a changing learning rate
 * does not recompile.
 *
 * Kernels that want more than one thread per output row (tiled matmul) ask for a thread *grid*
 * instead: `new KernelBuilder(outShape, { grid: [x, y, z], rows4 })`. Then `this.thread.x/y/z` are
 * used by the op directly (y and z are uniform across a webasm SIMD quad, x is the lane axis), and
 * with `rows4` each thread returns Array(4): rows 4y..4y+3 of column x. The backend puts the cells
 * back into the flat row-major output, so consumers never see the tiling.
 *
 * On webasm, map-style kernels ask for a *row grid* (`{ rowGrid: true }`): threads [lastDim, rows], so
 * `this.thread.x` is the last output dim and a read along a unit-stride last dim is `<uniform> + this.thread.x`,
 * which the wasm codegen (src/backend/wasm-codegen.ts) turns into one vector load instead of a 4-lane gather,
 * with no float div/mod to split a flat index. Same output layout, same values.
 *
 * Every kernel names one grid axis (`partAxis`) along which the backend may cut it into parts that run on
 * several threads (kernel-threads.ts). Thread ids along that axis come from `threadId()`, which adds the
 * part's first id, a compile-time constant (`this.constants.partBase`: 0 for a whole run); the other axes
 * are plain `this.thread.*`. So a part is the same source compiled with another constant.
 */
import type { DeviceBuffer, KernelSpec } from './buffer';
import { numelOf, Shape } from '../tensor/shape';

export interface StridedRef {
  buffer: DeviceBuffer;
  shape: Shape;
  strides: readonly number[];
  offset: number;
}

/** A float literal that every kernel language reads as a float. */
export function lit(v: number): string {
  if (Number.isNaN(v)) return '(0.0 / 0.0)';
  if (v === Infinity) return '1e38 * 10.0';
  if (v === -Infinity) return '-1e38 * 10.0';
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

export interface GridOptions {
  /** gpu.js thread grid [x, y?, z?] */
  grid: number[];
  /** each thread returns Array(4): component c of thread (x, y, z) is flat cell ((z*Y + y)*4 + c)*X + x */
  rows4?: boolean;
}

/** Name of the kernel constant holding the first thread id of a part along the kernel's partAxis. */
export const PART_BASE = 'partBase';

const AXES = ['x', 'y', 'z'] as const;
export type Axis = (typeof AXES)[number];

export class KernelBuilder {
  private readonly buffers: DeviceBuffer[] = [];
  /** per input: read a texel (Array(4)) at a time (GL quads views, see atQuad) */
  private readonly quadFlags: boolean[] = [];
  private readonly inputNames = new Map<DeviceBuffer, string>();
  private readonly quadNames = new Map<DeviceBuffer, string>();
  private readonly scalarValues: number[] = [];
  private readonly lines: string[] = [];
  private counter = 0;
  private outVars: string[] | null = null;
  private loopMax = 0;
  /** loop iterations one output cell runs in all (nested loops multiply), and the current nesting factor */
  private loopTotal = 0;
  private nest = 1;
  readonly outSize: number;
  /** what the op computes, for the graph tracer (src/graph): set by mapKernel / matmul, opaque here */
  meta: unknown = undefined;
  /** the op's name, for errors raised when the kernel runs (a result over the device's limit) */
  op = 'kernel';
  /** estimated inner-loop iterations per output cell (threading decisions); defaults to the longest loop */
  work?: number;

  /** [lastDim, rows] when this kernel runs on a row grid (see above) */
  private readonly rowGrid: [number, number] | null = null;
  /** grid axis along which parts may be cut (see above); null: this kernel always runs whole */
  readonly partAxis: number | null;

  /** GL quads kernel: one thread per 4 consecutive output cells, returning Array(4) (KernelSpec.quads) */
  readonly quads: boolean;

  constructor(
    readonly outShape: Shape,
    readonly gridOpts?: GridOptions,
    opts: { rowGrid?: boolean; quads?: boolean } = {},
  ) {
    this.outSize = numelOf(outShape);
    this.quads = !!opts.quads && !gridOpts;
    const X = outShape[outShape.length - 1];
    if (!gridOpts && opts.rowGrid && outShape.length >= 2 && X >= ROW_GRID_MIN && this.outSize > 0) {
      this.rowGrid = [X, this.outSize / X];
    }
    this.partAxis = partAxisOf(gridOpts?.grid ?? this.rowGrid ?? [this.outSize]);
    if (this.rowGrid) this.lines.push(`const i = ${this.threadId('y')} * ${X} + this.thread.x;`);
    else if (this.quads) this.lines.push(`const i = ${this.threadId('x')} * 4;`);
    else if (!gridOpts) this.lines.push(`const i = ${this.threadId('x')};`);
  }

  /** This thread's id along `axis` of the whole grid (offset by the part's first id on the partAxis). */
  threadId(axis: Axis): string {
    const id = `this.thread.${axis}`;
    return AXES.indexOf(axis) === this.partAxis ? `(${id} + this.constants.${PART_BASE})` : id;
  }

  fresh(prefix = 'v'): string {
    return `${prefix}${this.counter++}`;
  }

  emit(line: string): void {
    this.lines.push(line);
  }

  let(expr: string, prefix = 'v'): string {
    const name = this.fresh(prefix);
    this.lines.push(`let ${name} = ${expr};`);
    return name;
  }

  scalar(v: number): string {
    this.scalarValues.push(v);
    return `s${this.scalarValues.length - 1}`;
  }

  private bufferName(buf: DeviceBuffer): string {
    let n = this.inputNames.get(buf);
    if (!n) {
      n = `in${this.buffers.length}`;
      this.buffers.push(buf);
      this.quadFlags.push(false);
      this.inputNames.set(buf, n);
    }
    return n;
  }

  private quadName(buf: DeviceBuffer): string {
    let n = this.quadNames.get(buf);
    if (!n) {
      n = `in${this.buffers.length}`;
      this.buffers.push(buf);
      this.quadFlags.push(true);
      this.quadNames.set(buf, n);
    }
    return n;
  }

  /** Splits a flat row-major index into one variable per dim of `dims`. */
  decompose(flat: string, dims: Shape): string[] {
    const vars: string[] = new Array(dims.length);
    let stride = 1;
    for (let d = dims.length - 1; d >= 0; d--) {
      const name = this.fresh('d');
      const q = stride === 1 ? flat : `Math.floor(${flat} / ${stride})`;
      vars[d] = d === 0 ? this.declare(name, q) : this.declare(name, `${q} % ${dims[d]}`);
      stride *= dims[d];
    }
    return vars;
  }

  private declare(name: string, expr: string): string {
    this.lines.push(`const ${name} = ${expr};`);
    return name;
  }

  /** The output's multi-index variables (declared once); in a quads kernel, those of the thread's first cell. */
  outIndex(): string[] {
    if (this.gridOpts) throw new Error('internal: outIndex() of a grid kernel; the op supplies its indices');
    if (!this.outVars) {
      if (this.rowGrid) {
        // integer-typed (`| 0`: gpu.js's declared locals are f32) so reads keep integer index math
        const lead = this.outShape.slice(0, -1);
        const rows = lead.length === 1 ? [this.threadId('y')] : this.decompose(this.threadId('y'), lead).map(intOf);
        this.outVars = [...rows, 'this.thread.x'];
      } else this.outVars = this.decompose('i', this.outShape);
    }
    return this.outVars;
  }

  /**
   * Element of `ref` at one index expression per dim. An index expression that calls a function
   * (`Math.min(...)`) is first bound to a variable: inside `[...]` gpu.js's GLSL translation turns
   * float literals into ints, so `in0[Math.max(v, 0.0)]` becomes `max(float, int)` and fails to compile.
   */
  at(ref: StridedRef, idx: readonly string[]): string {
    // an empty buffer is never read at run time (a loop of 0 iterations, a dead branch), but gpu.js's
    // webasm and GL kernels cannot even take a 0-length argument: read a constant instead
    if (ref.buffer.size === 0) return '0.0';
    const name = this.bufferName(ref.buffer);
    return `${name}[${this.flatIndex(ref, idx)}]`;
  }

  /** The flat index of `ref` at one index expression per dim (see at). */
  private flatIndex(ref: StridedRef, idx: readonly string[]): string {
    const terms: string[] = [];
    if (ref.offset) terms.push(String(ref.offset));
    idx.forEach((e, d) => {
      const s = ref.strides[d];
      if (s === 0 || ref.shape[d] === 1) return;
      const v = /\(/.test(e) && /[A-Za-z_$][\w$.]*\s*\(/.test(e) ? this.let(e, 'ix') : e;
      terms.push(s === 1 ? v : `${v} * ${s}`);
    });
    return terms.length ? terms.join(' + ') : '0';
  }

  /**
   * GL only: the texel of `ref` holding 4 consecutive flat cells starting at `idx` (an Array(4) value,
   * component c = flat cell + c). The caller guarantees that flat index is a multiple of 4 (quadAligned):
   * GL stores 4 consecutive flat cells per texel, so this is one texture fetch.
   */
  atQuad(ref: StridedRef, idx: readonly string[]): string {
    // `* 0.25`, bound to a variable first, not `/ 4`: gpu.js's GLSL divides through a branchy exactness check
    // (divWithIntCheck), and inside `[...]` it would turn 0.25 into an int; a multiple of 4 (< 2^24) times
    // 0.25 is exact in f32
    const texel = this.let(`(${this.flatIndex(ref, idx)}) * 0.25`, 'tx');
    return `${this.quadName(ref.buffer)}[${texel}]`;
  }

  /** Element of `ref` broadcast (NumPy rules) to the output shape at the current output cell. */
  read(ref: StridedRef): string {
    if (ref.buffer.size === 0) return '0.0';
    if (isContiguous(ref) && ref.shape.length === this.outShape.length && numelOf(ref.shape) === this.outSize) {
      if (this.rowGrid)
        return `${this.bufferName(ref.buffer)}[${this.threadId('y')} * ${this.rowGrid[0]}${ref.offset ? ` + ${ref.offset}` : ''} + this.thread.x]`;
      return `${this.bufferName(ref.buffer)}[${ref.offset ? `${ref.offset} + i` : 'i'}]`;
    }
    return this.readAt(ref, this.outIndex());
  }

  /** Element of `ref` broadcast (NumPy rules) to the output shape at output multi-index `out`. */
  readAt(ref: StridedRef, out: readonly string[]): string {
    const lead = this.outShape.length - ref.shape.length;
    return this.at(
      ref,
      ref.shape.map((_, d) => out[d + lead]),
    );
  }

  /** `for (let r = 0; r < count; r++) { body(r) }` */
  loop(count: number, body: (r: string) => void): void {
    this.loopFrom(0, count, 1, body);
  }

  /**
   * `for (let r = start; r < end; r += step) { body(r) }`. The loop variable is a float in some kernel
   * languages (gpu.js's wasm backend types every declared local as f32); `intOf(r)` reads it as an integer.
   */
  loopFrom(start: number, end: number, step: number, body: (r: string) => void): void {
    const r = this.fresh('r');
    const count = Math.max(0, Math.ceil((end - start) / step));
    this.loopMax = Math.max(this.loopMax, count);
    this.loopTotal += this.nest * count;
    this.lines.push(`for (let ${r} = ${start}; ${r} < ${end}; ${r}${step === 1 ? '++' : ` += ${step}`}) {`);
    const outer = this.nest;
    this.nest *= Math.max(count, 1);
    body(r);
    this.nest = outer;
    this.lines.push('}');
  }

  build(result: string): KernelSpec {
    const params = [...this.buffers.map((_, k) => `in${k}`), ...this.scalarValues.map((_, k) => `s${k}`)];
    const source = `function(${params.join(', ')}) {\n${this.lines.join('\n')}\nreturn ${result};\n}`;
    const quadInputs = this.quadFlags.some((q) => q) ? [...this.quadFlags] : undefined;
    return {
      source,
      outSize: this.outSize,
      inputs: this.buffers,
      scalars: this.scalarValues,
      loopMax: this.loopMax,
      loopTotal: this.loopTotal,
      grid: this.gridOpts?.grid ?? this.rowGrid ?? undefined,
      rows4: this.gridOpts?.rows4,
      quads: this.quads || undefined,
      quadInputs,
      work: this.work ?? Math.max(this.loopMax, 1),
      partAxis: this.partAxis ?? undefined,
      meta: this.meta,
      op: this.op,
    };
  }
}

/**
 * The axis a grid is cut along: its outermost axis longer than 1 (z, else y). A 1-D (flat) grid is cut
 * along x, in whole SIMD quads; a multi-axis grid never along x (its lanes would straddle parts).
 */
function partAxisOf(grid: readonly number[]): number | null {
  let axis = grid.length - 1;
  while (axis > 0 && grid[axis] < 2) axis--;
  return axis === 0 && grid.length > 1 ? null : axis;
}

/** Shortest last dim worth a row grid (narrower rows leave most of each SIMD quad to the scalar tail). */
const ROW_GRID_MIN = 8;

/** An integer view of an index expression (a loop variable, a float expression known to be integral). */
export function intOf(e: string): string {
  return `(${e} | 0)`;
}

export function isContiguous(ref: { shape: Shape; strides: readonly number[] }): boolean {
  let s = 1;
  for (let d = ref.shape.length - 1; d >= 0; d--) {
    if (ref.shape[d] !== 1 && ref.strides[d] !== s) return false;
    s *= ref.shape[d];
  }
  return true;
}
