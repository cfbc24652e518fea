/**
 * Host arrays for webasm kernel outputs (the direct kernels', and gpu.js's through wasm-codegen.ts),
 * recycled after an explicit release. A fresh 1 MiB
 * Float32Array is fresh memory: the allocator hands back pages the collector freed (and the C library gave
 * back to the system), and each first touch is a page fault. Profiled (`node --cpu-prof`, 512x512 matmul
 * loop under tidy): first-touch faults of the output and of the read-back copy were most of the time
 * outside the kernel, 0.5x of the kernel's own time on this busy VM; with pages kept they vanish.
 *
 * Only arrays this pool made come back to it, and only through Backend.free (a buffer released by
 * dispose, tidy, autograd or a replay; its handle is nulled there, so no kernel reads it again). Buffers
 * the collector frees never come back: that is the garbage collector's memory, as before. Arrays a caller
 * handed in (`tensor(data)`) are never recycled. A recycled array is dropped from the panel cache, whose
 * key it is (its contents change).
 */
import { option } from '../../platform/options';
import { isShared } from '../../util/shared-memory';

const mine = new WeakSet<Float32Array>();
const free = new Map<number, Float32Array[]>();
let held = 0;
/** recycled arrays handed out, arrays kept (for tests and diagnostics) */
export const outPoolStats = { reused: 0, kept: 0 };
const forgetters: ((a: Float32Array) => void)[] = [];

/** Bytes kept for reuse at most (TSNN_WASM_OUT_POOL_MB, default 64 MiB; 0 turns recycling off). */
function budget(): number {
  return (option('wasmOutPoolMb') ?? 64) * 2 ** 20;
}

/** A Float32Array of `n` cells (contents unspecified: the caller writes every cell). */
export function takeOutput(n: number): Float32Array {
  const list = free.get(n);
  const a = list?.pop();
  if (a) {
    held -= n * 4;
    outPoolStats.reused++;
    return a;
  }
  const fresh = new Float32Array(n);
  mine.add(fresh);
  return fresh;
}

/** A released buffer's array: kept for the next takeOutput of its size if this pool made it and there is room. */
export function recycleOutput(a: Float32Array): void {
  if (!mine.has(a) || isShared(a.buffer)) return;
  if (held + a.byteLength > budget()) return;
  for (const f of forgetters) f(a);
  let list = free.get(a.length);
  if (!list) free.set(a.length, (list = []));
  list.push(a);
  held += a.byteLength;
  outPoolStats.kept++;
}

/** `f` is told of every array about to be reused (caches keyed by a host array drop it). */
export function onRecycle(f: (a: Float32Array) => void): void {
  forgetters.push(f);
}

/** Drops every kept array (tests). */
export function clearOutPool(): void {
  free.clear();
  held = 0;
}
