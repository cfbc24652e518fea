/**
 * Rewrites of a kernel's source for GL, where gpu.js translates some JavaScript very expensively.
 *
 * `intOf(r)` (`(r | 0)`, kernel-builder.ts) tells gpu.js's WebAssembly backend, which types every local as
 * f32, to use a loop counter as an integer. gpu.js's GLSL has no `|`: it calls `bitwiseOr(int(r), 0)`, a
 * loop over the bits with two integer divisions per bit, and matmul and the reductions index with it in
 * their innermost loop (5 calls per 16 multiply-adds in the 4-cells-per-thread matmul: most of its time on
 * SwiftShader). A counter of `for (let r = <int>; ...; r++ | r += <int>)` only ever holds integers, so on GL
 * `(r | 0)` is `r` itself: the same value, no call.
 */

/** Counters of loops that start at an integer and step by an integer: they hold integers only. */
const INT_LOOP = /for \(let (\w+) = -?\d+; \1 < [^;]+; \1(?:\+\+| \+= \d+)\)/g;

/** `source` with `(r | 0)` replaced by `r` for every integer loop counter r (see the module comment). */
export function glSource(source: string): string {
  const counters = new Set<string>();
  for (const m of source.matchAll(INT_LOOP)) counters.add(m[1]);
  if (counters.size === 0) return source;
  return source.replace(/\((\w+) \| 0\)/g, (whole, name: string) => (counters.has(name) ? name : whole));
}
