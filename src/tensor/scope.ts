/**
 * Deterministic release of device memory. JS has no destructors, so:
 *  - `tidy(fn)` frees every tensor created inside fn except what fn returns (and what was kept:
 *    parameters, `.grad`, optimizer state), like TF.js's tidy;
 *  - `t.dispose()` frees one tensor now;
 *  - a FinalizationRegistry frees whatever the garbage collector finds unreachable (a safety net).
 */
import type { Storage } from './storage';

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

const finalizer = new FinalizationRegistry<{ storage: Storage; live: { v: boolean } }>((held) => {
  if (held.live.v) held.storage.drop();
});

/** Called by every new Tensor. */
export function track(t: Disposable, storage: Storage, live: { v: boolean }): void {
  finalizer.register(t, { storage, live }, live);
  scopes[scopes.length - 1]?.add(t);
}

export function untrackFinalizer(live: { v: boolean }): void {
  finalizer.unregister(live);
}

/** Excludes a tensor from the enclosing tidy scopes (it outlives them). */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Collects the tensors reachable from a tidy result (tensors, arrays, plain objects). */
function collect(x: unknown, out: Set<unknown>, seen = new Set<unknown>()): void {
  if (x === null || typeof x !== 'object' || seen.has(x)) return;
  seen.add(x);
  out.add(x);
  if (Array.isArray(x)) x.forEach((v) => collect(v, out, seen));
  else if (Object.getPrototypeOf(x) === Object.prototype) Object.values(x).forEach((v) => collect(v, out, seen));
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error('tidy(): the function must be synchronous (it returned a Promise)');
  const kept = new Set<unknown>();
  collect(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
  return result;
}
