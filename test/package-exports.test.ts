/**
 * The public surface, audited against the contract (docs/API.md): every op, layer, functional form and optimizer
 * it lists is exported from the package root; the helpers that build ops and kernels are not.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from './helpers';
import * as internalOps from '../src/ops';
import * as kernel from '../src/ops/kernel';

/** What `require('tsnn')` gives a user: the package's `main`. */
function packageRoot(): Record<string, any> {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8'));

  return require(path.join(repoRoot(), pkg.main));
}

/** The settled part of the contract: the sections before the ones that describe open issues. */
function contract(): string {
  const text = fs.readFileSync(path.join(repoRoot(), 'docs/API.md'), 'utf8');
  const open = text.search(/^## .*contract for the open issues/m);
  return open < 0 ? text : text.slice(0, open);
}

/** Names in the first `code span` after `lead` (`slice/narrow` is two names; `F.`/`nn.` prefixes and `(...)` dropped). */
function listAfter(doc: string, lead: string): string[] {
  const at = doc.indexOf(lead);
  if (at < 0) throw new Error(`docs/API.md no longer says "${lead}": update test/package-exports.test.ts with the contract`);
  const span = /`([^`]+)`/.exec(doc.slice(at + lead.length));
  if (!span) throw new Error(`docs/API.md: no code span after "${lead}"`);
  return span[1]
    .replace(/\([^)]*\)/g, '')
    .split(/[\s,/]+/)
    .filter(Boolean)
    .map((n) => n.replace(/^(F|nn)\./, ''));
}

/** Names a `ns.Name` code span mentions anywhere in the doc (e.g. `optim.AdamW`). */
function qualified(doc: string, ns: string): string[] {
  return [...new Set([...doc.matchAll(new RegExp('`' + ns + '\\.(\\w+)', 'g'))].map((m) => m[1]))];
}

const missing = (names: string[], has: (n: string) => boolean) => names.filter((n) => !has(n));
const isFn = (x: unknown) => typeof x === 'function';

/** src/ops exports these to other src modules only; they are not ops a user calls. */
const INTERNAL_HELPERS = ['binary', 'inplace', 'isContiguousTensor', 'matmulAddBias', 'matmulKernel', 'matmulVariant', 'sumTo', 'toDevice', 'unary'];

describe('package exports: everything docs/API.md lists', () => {
  const root = packageRoot();
  const doc = contract();
  const method = (n: string) => isFn(root.Tensor.prototype[n]);

  it("ops: function at the root, in `ops`, and Tensor method ('method and function form')", () => {
    const ops = listAfter(doc, 'Ops (method and function form');
    expect(ops).to.include.members(['add', 'logSoftmax', 'slice', 'narrow', 'clamp']); // the list was parsed
    expect(
      missing(ops, (n) => isFn(root[n])),
      'not exported from the package root',
    ).to.deep.equal([]);
    expect(
      missing(ops, (n) => isFn(root.ops[n])),
      'not in the ops namespace',
    ).to.deep.equal([]);
    expect(missing(ops, method), 'no Tensor method').to.deep.equal([]);
  });

  it('in-place ops are Tensor methods', () => {
    const inplace = listAfter(doc, 'in-place');
    expect(inplace).to.include('zero_');
    expect(missing(inplace, method)).to.deep.equal([]);
  });

  it('tensor creation, the model-writing imports, F, nn layers and containers, optim', () => {
    const creation = ['tensor', 'manualSeed', ...listAfter(doc, '`tensor(data, {requiresGrad?, device?})`,')];
    expect(creation).to.include.members(['zeros', 'eye']);
    expect(
      missing(creation, (n) => isFn(root[n])),
      'creation functions',
    ).to.deep.equal([]);

    const imports = [...doc.matchAll(/^import \{([^}]+)\} from 'tsnn'/gm)].flatMap((m) => m[1].split(',').map((s) => s.trim()));
    expect(imports).to.include('child');
    expect(
      missing(imports, (n) => n in root),
      'names the examples import',
    ).to.deep.equal([]);

    const functional = listAfter(doc, '`F` holds the functional forms:');
    expect(functional).to.include('crossEntropy');
    expect(
      missing(functional, (n) => isFn(root.F[n])),
      'F',
    ).to.deep.equal([]);

    const layers = [...listAfter(doc, 'Layers:'), ...qualified(doc, 'nn')];
    expect(layers).to.include.members(['Linear', 'Sequential', 'ModuleDict', 'compile']);
    expect(
      missing(layers, (n) => isFn(root.nn[n])),
      'nn',
    ).to.deep.equal([]);

    const optimizers = qualified(doc, 'optim');
    expect(optimizers).to.include.members(['SGD', 'AdamW']);
    expect(
      missing(optimizers, (n) => isFn(root.optim[n])),
      'optim',
    ).to.deep.equal([]);
  });
});

describe('package exports: internals stay internal', () => {
  const root = packageRoot();
  const namespaces: [string, Record<string, unknown>][] = [
    ['tsnn', root],
    ['tsnn.ops', root.ops],
    ['tsnn.F', root.F],
    ['tsnn.nn', root.nn],
  ];
  const reachable = (names: string[]) => names.flatMap((n) => namespaces.filter(([, ns]) => n in ns).map(([where]) => `${where}.${n}`));

  it('the ops namespace is every op in src/ops except exactly the op-building helpers', () => {
    const publicOps = new Set(Object.keys(root.ops));
    const hidden = Object.keys(internalOps).filter((n) => !publicOps.has(n));
    // A new op that fails here belongs in src/ops/public.ts; a new helper, in INTERNAL_HELPERS.
    expect(hidden.sort()).to.deep.equal(INTERNAL_HELPERS);
  });

  it('no op-building helper and nothing from src/ops/kernel.ts is reachable from the package root', () => {
    expect(Object.keys(kernel)).to.include('isContiguousTensor'); // the module was read
    expect(reachable([...INTERNAL_HELPERS, ...Object.keys(kernel)])).to.deep.equal([]);
  });
});
