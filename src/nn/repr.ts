/** PyTorch-style module repr: `Name(extra)` or an indented tree of `(name): Child(...)`. */
import type { Module } from './module';

export function moduleRepr(m: Module): string {
  const extra = m.extraRepr();
  const kids = m.namedChildrenAll();
  if (!kids.length) return `${m.constructor.name}(${extra})`;
  const lines = extra ? [extra] : [];
  for (const [name, c] of kids) lines.push(`(${name}): ${moduleRepr(c)}`);
  return `${m.constructor.name}(\n${lines.map((l) => l.replace(/^/gm, '  ')).join('\n')}\n)`;
}
