/**
 * Deterministic release of device memory. JS has no destructors, so:
 *  - `tidy(fn)` frees every tensor created inside fn except what fn returns (and what was kept:
 *    parameters, `.grad`, optimizer state), like TF.js's tidy;
 *  - `t.dispose()` frees one tensor now;
 *  - whatever is left unreachable is reclaimed by the garbage collector: a tensor owns its storage, the
 *    storage its device buffer, and nothing global holds them (src/backend/gpujs-backend.ts registers
 *    buffers without keeping them alive), so a plain training loop stays flat with no tidy at all.
 */

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

/** Called by every new Tensor: the innermost tidy scope frees it unless it is returned or kept. */
export function track(t: Disposable): void {
  scopes[scopes.length - 1]?.add(t);
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
  return scoped(fn).result;
}

/**
 * tidy() that also says which of the result's tensors `fn` created (the rest of the result came from
 * outside): autograd owns a gradient rule's fresh outputs and frees them once they are summed or used.
 */
export function scoped<T>(fn: () => T): { result: T; made: Disposable[] } {
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
  const made: Disposable[] = [];
  for (const t of scope) {
    if (kept.has(t)) {
      parent?.add(t);
      made.push(t);
    } else if (!t.isDisposed) t.dispose();
  }
  return { result, made };
}
