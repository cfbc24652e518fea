/** PyTorch-style module repr: `Name(extra)` or an indented tree of `(name): Child(...)`. */
/** What a repr needs of a module (nn.Module has it; a structural type, so this file does not import module.ts back). */
export interface ReprModule {
  extraRepr(): string;
  namedChildrenAll(): [string, ReprModule][];
}

export function moduleRepr(m: ReprModule): string {
  const extra = m.extraRepr();
  const kids = m.namedChildrenAll();
  if (!kids.length) return `${m.constructor.name}(${extra})`;
  const lines = extra ? [extra] : [];
  for (const [name, c] of kids) lines.push(`(${name}): ${moduleRepr(c)}`);
  return `${m.constructor.name}(\n${lines.map((l) => l.replace(/^/gm, '  ')).join('\n')}\n)`;
}
