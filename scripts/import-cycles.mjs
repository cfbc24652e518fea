/**
 * An ESLint rule (`tsnn/no-import-cycle`, eslint.config.mjs) that forbids import circles among the
 * TypeScript files of a directory, counting type-only imports too: eslint-plugin-import-x's no-cycle always
 * skips `import type`, and a circle of types is still a circle of design (two modules that each need the
 * other's declarations). Imports and re-exports are read with TypeScript's preProcessFile (`import`,
 * `import type`, `export ... from`, `import x = require()`, `import('...')` types); relative specifiers are
 * resolved to `<path>.ts` or `<path>/index.ts`. The graph of the whole directory is built once per lint run;
 * each import that stays inside a strongly connected component is reported with one circle through it.
 * `allow` lists circles not yet removed, each as its exact set of files: anything else still fails.
 */
import * as fs from 'fs';
import * as path from 'path';
import ts from 'typescript';

function tsFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base.endsWith('.js') ? base.slice(0, -3) + '.ts' : null, `${base}.ts`, path.join(base, 'index.ts'), base]) {
    if (c && c.endsWith('.ts') && fs.existsSync(c)) return c;
  }
  return null;
}

/** The import graph of `dir`: file -> [{ target, spec }]. */
export function importGraph(dir) {
  const graph = new Map();
  for (const file of tsFiles(dir)) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const edges = [];
    for (const f of info.importedFiles) {
      const target = resolveImport(file, f.fileName);
      if (target) edges.push({ target, spec: f.fileName });
    }
    graph.set(file, edges);
  }
  return graph;
}

/** Strongly connected components (Tarjan) of more than one file, or of one file importing itself. */
export function importCycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const comps = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const { target: w } of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).some((e) => e.target === v)) comps.push(comp);
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return comps;
}

/** A shortest path of imports from `from` back to `to` inside `comp` (breadth-first). */
function pathBack(graph, comp, from, to) {
  const inComp = new Set(comp);
  const prev = new Map([[from, null]]);
  const queue = [from];
  while (queue.length) {
    const v = queue.shift();
    if (v === to) break;
    for (const { target } of graph.get(v) ?? []) {
      if (inComp.has(target) && !prev.has(target)) {
        prev.set(target, v);
        queue.push(target);
      }
    }
  }
  const out = [];
  for (let v = to; v !== null && v !== undefined; v = prev.get(v)) out.unshift(v);
  return out;
}

const graphs = new Map();

export const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbid import circles, type-only imports included' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          // circles known and not yet removed, each as its exact set of files (relative to root): allowed only
          // while exactly that set forms the circle, so a new circle, or a file joining one, still fails
          allow: { type: 'array', items: { type: 'array', items: { type: 'string' } } },
        },
        additionalProperties: false,
      },
    ],
    messages: { cycle: 'Import circle (type-only imports count): {{circle}}' },
  },
  create(context) {
    const root = path.resolve(context.options[0]?.root ?? 'src');
    let g = graphs.get(root);
    if (!g) {
      const graph = importGraph(root);
      const compOf = new Map();
      const allowed = new Set((context.options[0]?.allow ?? []).map((files) => [...files].sort().join('\n')));
      for (const comp of importCycles(graph)) {
        if (
          allowed.has(
            comp
              .map((f) => path.relative(root, f))
              .sort()
              .join('\n'),
          )
        )
          continue;
        for (const f of comp) compOf.set(f, comp);
      }
      g = { graph, compOf };
      graphs.set(root, g);
    }
    const file = path.resolve(context.physicalFilename ?? context.filename);
    const comp = g.compOf.get(file);
    if (!comp) return {};
    const rel = (f) => path.relative(root, f);
    const check = (node, spec) => {
      if (typeof spec !== 'string') return;
      const target = resolveImport(file, spec);
      if (!target || g.compOf.get(target) !== comp) return;
      const back = pathBack(g.graph, comp, target, file);
      context.report({ node, messageId: 'cycle', data: { circle: [file, ...back].map(rel).join(' -> ') } });
    };
    return {
      ImportDeclaration: (n) => check(n, n.source.value),
      ExportNamedDeclaration: (n) => n.source && check(n, n.source.value),
      ExportAllDeclaration: (n) => check(n, n.source.value),
      TSImportType: (n) => check(n, n.argument?.literal?.value ?? n.argument?.value),
    };
  },
};
