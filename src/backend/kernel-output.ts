/**
 * How tsnn creates gpu.js kernels and lays their results out as flat row-major Float32Arrays. Each
 * function is self-contained: the worker threads (kernel-threads.ts) run their source text too.
 */
import { PART_BASE } from './kernel-builder';

/**
 * gpu.js's webasm kernel hands results back as nested arrays (rows, and a Float32Array view per cell for
 * Array(n) results): for a 512x128 grid of Array(4) that is 65,536 view objects, a few ms. Its
 * `_shapeOutput(data)` receives the flat result first; on this pinned gpu.js version we keep that flat
 * array and lay the cells out ourselves. Anything else (other backends, a kernel that switched
 * implementation) still goes through the generic nested-array path below.
 */
export function flatWasmOutput(kernel: any): void {
  const inner = kernel?.kernel;
  // (tsnn's codegen subclass, TsnnWebAssemblyKernel, too: the exact-name test missed it and every webasm
  // kernel's result was re-shaped into nested arrays and flattened back)
  if (inner && /WebAssemblyKernel$/.test(inner.constructor?.name ?? '') && typeof inner._shapeOutput === 'function') {
    inner._shapeOutput = (data: Float32Array) => data;
  }
}

/** Copies nested gpu.js output (arrays of rows / Float32Arrays) into one flat Float32Array of `size` cells. */
export function flatten(out: any, size: number): Float32Array {
  if (out instanceof Float32Array) return out.length === size ? out : out.slice(0, size);
  const flat = new Float32Array(size);
  let at = 0;
  const walk = (x: any) => {
    if (at >= size) return;
    if (typeof x === 'number') flat[at++] = x;
    else if (x instanceof Float32Array || (ArrayBuffer.isView(x) && !(x instanceof DataView))) {
      const v = x as Float32Array;
      const n = Math.min(v.length, size - at);
      flat.set(n === v.length ? v : v.subarray(0, n), at);
      at += n;
    } else for (const y of x) walk(y);
  };
  walk(out);
  return flat;
}

/**
 * Lays out an Array(4)-per-thread result in row-major order: gpu.js stores component c of thread
 * (x, r) (r = z*Y + y) at ((r*X + x)*4 + c); the tensor wants it at ((r*4 + c)*X + x).
 */
export function unpackRows4(out: any, grid: number[], size: number): Float32Array {
  const dst = new Float32Array(size);
  unpackRows4Into(out, grid, dst, 0, size);
  return dst;
}

/** unpackRows4 into dst[offset, offset + size) (one part of a split kernel). Self-contained: workers run its source. */
export function unpackRows4Into(out: any, grid: number[], dst: Float32Array, offset: number, size: number): void {
  const X = grid[0];
  const R = (grid[1] ?? 1) * (grid[2] ?? 1);
  const src = out instanceof Float32Array && out.length === X * R * 4 ? out : flatten(out, X * R * 4);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < 4; c++) {
      const row = (r * 4 + c) * X;
      if (row >= size) return;
      const n = Math.min(X, size - row);
      let s = r * X * 4 + c;
      for (let x = 0; x < n; x++, s += 4) dst[offset + row + x] = src[s];
    }
  }
}

/** Copies a (flat or nested) kernel result into dst[offset, offset + size). Self-contained: workers run its source. */
export function copyInto(out: any, dst: Float32Array, offset: number, size: number): void {
  const src = out instanceof Float32Array && out.length >= size ? out : flatten(out, size);
  dst.set(src.length === size ? src : src.subarray(0, size), offset);
}

/**
 * gpu.js settings of a kernel; `partBase`: the first thread id of the part it runs (kernel-builder.ts), if it
 * names one; `flatOutput` false: a GL kernel whose threads return Array(4) (KernelSpec.quads), already 4 cells per texel.
 */
export function kernelSettings(output: number[], loopMax: number | undefined, pipeline: boolean, partBase?: number, flatOutput = true) {
  return {
    output,
    ...(partBase === undefined ? {} : { constants: { [PART_BASE]: partBase }, constantTypes: { [PART_BASE]: 'Integer' } }),
    pipeline,
    // GL: 4 values per RGBA texel (gpu.js runs the kernel once per channel): a quarter of the texels to
    // store, sample and read back
    optimizeFloatMemory: pipeline && flatOutput,
    immutable: true,
    precision: 'single',
    tactic: 'precision',
    loopMaxIterations: Math.max(1000, (loopMax ?? 0) + 1),
    strictIntegers: false,
  };
}
