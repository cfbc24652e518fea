/**
 * Output arrays of the direct (native) kernels, recycled when their buffer is freed. On the host backends
 * a tensor's buffer is a plain Float32Array, and a fresh one costs its first touch: the pages are faulted
 * in as the kernel writes them. On this project's VMs that is ~2-3 ns a cell when quiet and 30-60 ms for a
 * 3 MB output under load (bench/README.md, "Implicit-GEMM convolution"), more than the convolution's
 * arithmetic. A training or inference loop asks for the same sizes step after step, so a freed output is
 * handed to the next kernel that wants that many cells.
 *
 * Only arrays made here are kept (a WeakSet marks them): an array a user uploaded is never reused behind
 * their back. A taken array holds stale values; the kernel overwrites every cell. Bounded: at most
 * BUDGET bytes are held; small arrays (cheap to make, on V8's heap) are not pooled.
 */
const mine = new WeakSet<Float32Array>();
const free = new Map<number, Float32Array[]>();
const BUDGET = 128 * 2 ** 20;
const MIN_CELLS = 4096;
let held = 0;

export const hostPoolStats = { hits: 0, misses: 0 };

/** An array of `n` cells, its contents unspecified (recycled) or zero (new). */
export function takeHostArray(n: number): Float32Array {
  if (n < MIN_CELLS) return new Float32Array(n);
  const list = free.get(n);
  const a = list?.pop();
  if (a) {
    held -= n * 4;
    hostPoolStats.hits++;
    return a;
  }
  hostPoolStats.misses++;
  const made = new Float32Array(n);
  mine.add(made);
  return made;
}

/** A freed buffer's array: kept for reuse when takeHostArray made it and the pool has room. */
export function recycleHostArray(a: Float32Array): void {
  if (!mine.has(a) || held + a.byteLength > BUDGET) return;
  let list = free.get(a.length);
  if (!list) free.set(a.length, (list = []));
  list.push(a);
  held += a.byteLength;
}

/** Drops every kept array (tests; Backend.destroy). */
export function clearHostPool(): void {
  free.clear();
  held = 0;
}
