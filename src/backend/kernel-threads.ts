/**
 * Running one kernel on several threads behind the synchronous API. gpu.js threads webasm kernels only
 * under its asynchronous contract, so a large kernel (threads x inner loop >= SPLIT_WORK) is cut here into
 * one part per thread along its `partAxis` (kernel-builder.ts): a part is the kernel's own source compiled
 * for a shorter grid with its first thread id as a constant (`partBase`). Worker threads (worker-pool.ts)
 * each run a part with their own synchronous gpu.js kernel while the calling thread runs the first, then
 * the caller blocks on Atomics.wait until the workers are done (Node allows that on the main thread).
 * Parts write straight into one SharedArrayBuffer output, and inputs move to shared memory once (buffers
 * are immutable), so nothing is copied per call. setBackendOptions({ threads: 1 }) (TSNN_THREADS=1) turns this
 * off. Where the threads come from is the platform's (platform/threads.ts: worker_threads in Node, Web
 * Workers in a cross-origin-isolated page).
 */
import { option } from '../platform/options';
import { cpuCount } from '../platform/threads';
import type { DeviceBuffer, Handle, KernelSpec } from './buffer';
import { copyInto, unpackRows4Into } from './kernel-output';
import { isShared } from '../util/shared-memory';

/** Below this much work (threads x inner-loop iterations) a kernel runs on one thread: a split costs ~0.1 ms. */
export const SPLIT_WORK = 1 << 21;

/** Threads one kernel may use: setBackendOptions({ threads }) / TSNN_THREADS, else the cores here (at most 4). */
export function threadCount(): number {
  return option('threads') ?? Math.max(1, Math.min(cpuCount(), 4));
}

/** One part of a split kernel: the thread ids it runs, and the output cells they write. */
export interface KernelPart {
  /** first thread id along the kernel's partAxis (the `partBase` constant it is compiled with) */
  base: number;
  /** its thread grid: the kernel's, with partAxis shortened to this part's ids */
  grid: number[];
  /** first flat output cell of this part, and how many it writes */
  offset: number;
  size: number;
}

/**
 * Cuts a kernel along its partAxis into at most `threads` parts (for a flat kernel, in multiples of 4 ids
 * so SIMD quads stay whole), or returns null when it is too small to be worth it or has no partAxis.
 */
export function splitKernel(spec: KernelSpec, threads: number): KernelPart[] | null {
  const axis = spec.partAxis;
  const grid = spec.grid ?? [spec.outSize];
  const cells = grid.reduce((a, b) => a * b, 1);
  if (axis === undefined || axis >= grid.length || threads < 2 || cells * Math.max(spec.work ?? spec.loopMax ?? 1, 1) < SPLIT_WORK) return null;
  const comps = spec.rows4 ? 4 : 1;
  const len = grid[axis];
  const quantum = axis === 0 ? 4 : 1;
  const n = Math.min(threads, Math.floor(len / quantum));
  if (n < 2) return null;
  // cells of output per step along the axis
  const stride = grid.slice(0, axis).reduce((a, b) => a * b, 1) * comps;
  const parts: KernelPart[] = [];
  let start = 0;
  for (let p = 0; p < n; p++) {
    const end = p === n - 1 ? len : Math.round(((p + 1) * len) / n / quantum) * quantum;
    if (end <= start) continue;
    const g = [...grid];
    g[axis] = end - start;
    const offset = start * stride;
    if (offset >= spec.outSize) break;
    parts.push({ base: start, grid: g, offset, size: Math.min((end - start) * stride, spec.outSize - offset) });
    start = end;
  }
  return parts.length > 1 ? parts : null;
}

/** Runs one part on this thread (kernel: the spec's source compiled for the part) into dst. */
export function runPart(kernel: any, part: KernelPart, spec: KernelSpec, args: Handle[], dst: Float32Array): void {
  const out = kernel(...args, ...spec.scalars);
  if (spec.rows4) unpackRows4Into(out, part.grid, dst, part.offset, part.size);
  else copyInto(out, dst, part.offset, part.size);
}

/** Moves a host buffer into shared memory (once: buffers are immutable), so workers read it without a copy. */
export function shareBuffer(b: DeviceBuffer): Float32Array {
  const h = b.handle;
  if (!(h instanceof Float32Array)) throw new Error('internal: kernel input buffer was already released');
  if (isShared(h.buffer)) return h;
  const shared = new Float32Array(new SharedArrayBuffer(h.length * 4));
  shared.set(h);
  b.handle = shared;
  return shared;
}
