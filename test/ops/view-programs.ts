/**
 * Random small autograd programs for the gradient-accumulation property test. Leaves reach the output
 * through chains of view and shape ops (several terms may read one leaf), the terms are combined with
 * broadcasting, an in-place op may follow, and several backward passes run without zeroing `.grad`,
 * which is edited in place between them. A program runs on tsnn (`runPass`, `editGrad`) and on a
 * plain-JS float64 reference (`passLoss`, `fdGrad`, `editRef`) that shares no code with tsnn.
 */
import { noGrad, Tensor, tensor, DeviceName } from '../../src';
import { Arr, bread, broadcastShape, mapRef, numel, ravel, unravel } from './util';

export type ShapeOp =
  | { op: 'permute'; dims: number[] }
  | { op: 'transpose'; d0: number; d1: number }
  | { op: 'reshape' | 'view'; shape: number[] }
  | { op: 'flatten'; start: number; end: number }
  | { op: 'unsqueeze' | 'squeeze'; dim: number }
  | { op: 'expand'; shape: number[] }
  | { op: 'slice'; dim: number; start: number; end: number; step: number }
  | { op: 'narrow'; dim: number; start: number; length: number };

/** A leaf read through a chain of shape ops; its result broadcasts to the program's output shape. */
export interface Term {
  leaf: number;
  ops: ShapeOp[];
}

/** In place on a gradient, between backward passes. */
export type GradEdit =
  | { leaf: number; kind: 'scale' | 'shift'; c: number }
  | { leaf: number; kind: 'zero' | 'none' }
  | { leaf: number; kind: 'set'; index: number; value: number };

/** One forward + backward: out = x * combined terms (then the in-place op); loss = sum(out * seed). */
export interface Pass {
  x: number[];
  /** explicit backward seed, modified in place after the backward (null: out.sum().backward()) */
  seed: number[] | null;
  /** backward through the same graph twice (retainGraph on the first) */
  twice: boolean;
  edits: GradEdit[];
}

export interface Program {
  out: number[];
  leaves: { shape: number[]; data: number[] }[];
  terms: Term[];
  /** combine[k] joins term k + 1 onto what came before */
  combine: ('add' | 'sub' | 'mul')[];
  /** view ops on the combined terms that end at the same shape (their rules run on a non-leaf) */
  roundTrip: ShapeOp[];
  /** out.mul_(term) or out.add_(term) after out = x * combined */
  inplace: { op: 'mul_' | 'add_'; term: Term } | null;
  passes: Pass[];
}

// ---- generation ---------------------------------------------------------------------------------

/** A deterministic LCG stream in [0, 1); the seed is mixed first, so that nearby seeds start far apart. */
function stream(seed: number): () => number {
  let s = seed >>> 0;
  s = Math.imul(s ^ (s >>> 16), 0x85ebca6b);
  s = Math.imul(s ^ (s >>> 13), 0xc2b2ae35);
  s = (s ^ (s >>> 16)) >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const MAX_RANK = 4;
const MAX_LEAF_NUMEL = 36;

/** A random program, fully determined by `seed`. */
export function genProgram(seed: number): Program {
  const r = stream(seed);
  const int = (n: number) => Math.floor(r() * n);
  const grid = (n: number) => Array.from({ length: n }, () => int(13) / 4 - 1.5); // -1.5 .. 1.5 by 0.25

  // a plain program reads two or more leaves at the output's shape through views that keep memory
  // contiguous and adds the terms, so the leaves' gradients are views of one buffer (an aliasing that
  // .grad must not keep); the others use any shape op and broadcasting
  const plain = r() < 0.4;
  const out = Array.from({ length: 1 + int(3) }, () => 1 + int(3));
  const nLeaves = plain ? 2 + int(2) : 1 + int(3);
  const leaves: Program['leaves'] = [];
  const chains: { ops: ShapeOp[]; shape: number[] }[] = []; // leaf -> canonical chain and the shape it ends at
  for (let i = 0; i < nLeaves; i++) {
    const lead = plain || int(2) ? 0 : int(out.length);
    const b = plain ? [...out] : out.slice(lead).map((d) => (r() < 0.3 ? 1 : d));
    const ops: ShapeOp[] = [];
    let s = b;
    for (let k = int(4); k > 0; k--) {
      const step = decorate(s, int, r, plain ? PLAIN_KINDS : ALL_KINDS);
      if (!step || numel(step.from) > MAX_LEAF_NUMEL) continue;
      ops.unshift(step.op);
      s = step.from;
    }
    leaves.push({ shape: s, data: grid(numel(s)) });
    chains.push({ ops, shape: b });
  }
  const termOf = (leaf: number): Term => ({ leaf, ops: [...chains[leaf].ops, ...(plain ? [] : tail(chains[leaf].shape, out, int))] });
  const terms = leaves.map((_, i) => termOf(i));
  for (let k = int(3); k > 0; k--) terms.splice(int(terms.length + 1), 0, termOf(int(nLeaves)));
  const combine = terms.slice(1).map(() => (plain ? 'add' : (['add', 'sub', 'mul'] as const)[int(3)]));
  const combined = terms.map((t) => shapeAfter(leaves[t.leaf].shape, t.ops)).reduce((a, b) => broadcastShape(a, b));
  const passes: Pass[] = Array.from({ length: 2 + int(2) }, () => ({
    x: grid(numel(out)),
    seed: int(2) ? grid(numel(out)) : null,
    twice: r() < 0.2,
    edits: Array.from({ length: int(3) }, (): GradEdit => {
      const leaf = int(nLeaves);
      const kind = (['scale', 'shift', 'zero', 'none', 'set'] as const)[int(5)];
      if (kind === 'scale' || kind === 'shift') return { leaf, kind, c: [0.5, -1, 2][int(3)] };
      if (kind === 'set') return { leaf, kind, index: int(numel(leaves[leaf].shape)), value: int(9) - 4 };
      return { leaf, kind };
    }),
  }));
  return {
    out,
    leaves,
    terms,
    combine,
    roundTrip: roundTrip(combined, int),
    inplace: int(2) ? { op: int(2) ? 'mul_' : 'add_', term: termOf(int(nLeaves)) } : null,
    passes,
  };
}

const ALL_KINDS = [0, 1, 2, 3, 4, 5, 6, 7, 8];
/** flatten, reshape/view, unsqueeze, squeeze: their gradients are views of the output's gradient */
const PLAIN_KINDS = [2, 3, 4, 5];

/**
 * One shape op (of the drawn kind: permute, transpose, flatten, reshape/view, unsqueeze, squeeze, slice,
 * narrow, expand) that ends at shape `to`, and the shape `from` it starts at: chains are built backwards
 * from the shape a term must reach to the leaf's shape (null when the drawn kind does not apply).
 */
function decorate(to: number[], int: (n: number) => number, r: () => number, kinds: number[]): { op: ShapeOp; from: number[] } | null {
  const n = to.length;
  const d = int(Math.max(n, 1));
  switch (kinds[int(kinds.length)]) {
    case 0: {
      if (n < 2) return null;
      const dims = to.map((_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = int(i + 1);
        [dims[i], dims[j]] = [dims[j], dims[i]];
      }
      const from = new Array<number>(n);
      dims.forEach((src, i) => (from[src] = to[i])); // permute(dims): to[i] = from[dims[i]]
      return { op: { op: 'permute', dims }, from };
    }
    case 1: {
      if (n < 2) return null;
      const d1 = (d + 1 + int(n - 1)) % n;
      const from = [...to];
      [from[d], from[d1]] = [from[d1], from[d]];
      return { op: { op: 'transpose', d0: d, d1 }, from };
    }
    case 2: {
      if (n === 0 || n >= MAX_RANK) return null;
      const divisors = Array.from({ length: to[d] }, (_, k) => k + 1).filter((k) => to[d] % k === 0);
      const a = divisors[int(divisors.length)];
      return { op: { op: 'flatten', start: d, end: d + 1 }, from: [...to.slice(0, d), a, to[d] / a, ...to.slice(d + 1)] };
    }
    case 3: {
      // from: the same elements in another shape (all in one dim, or the dims reversed)
      const from = int(2) ? [numel(to)] : [...to].reverse();
      return { op: { op: r() < 0.5 ? 'view' : 'reshape', shape: [...to] }, from };
    }
    case 4: {
      const ones = to.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0);
      if (!ones.length) return null;
      const dim = ones[int(ones.length)];
      return { op: { op: 'unsqueeze', dim }, from: to.filter((_, i) => i !== dim) };
    }
    case 5: {
      if (n >= MAX_RANK) return null;
      const dim = int(n + 1);
      return { op: { op: 'squeeze', dim }, from: [...to.slice(0, dim), 1, ...to.slice(dim)] };
    }
    case 6: {
      if (n === 0) return null;
      const step = 1 + int(2);
      const start = int(2);
      const end = start + (to[d] - 1) * step + 1;
      const from = [...to];
      from[d] = end + int(2);
      return { op: { op: 'slice', dim: d, start, end, step }, from };
    }
    case 7: {
      if (n === 0) return null;
      const start = int(2);
      const from = [...to];
      from[d] = to[d] + start + int(2);
      return { op: { op: 'narrow', dim: d, start, length: to[d] }, from };
    }
    default: {
      // expand: some dims of `to` come from size 1, leading ones may not exist in `from`
      const from = to.map((s) => (s > 1 && r() < 0.5 ? 1 : s));
      const lead = int(n + 1); // leading dims `from` lacks: expand adds them
      return { op: { op: 'expand', shape: [...to] }, from: from.slice(lead) };
    }
  }
}

/** Extra ops after a leaf's canonical chain, so two terms of one leaf differ; the result still broadcasts to `out`. */
function tail(shape: number[], out: number[], int: (n: number) => number): ShapeOp[] {
  const big = shape.map((s, i) => (s > 1 ? i : -1)).filter((i) => i >= 0);
  switch (int(4)) {
    case 0:
      if (!big.length) return [];
      {
        const dim = big[int(big.length)];
        return [{ op: 'narrow', dim, start: int(shape[dim]), length: 1 }];
      }
    case 1:
      return [{ op: 'expand', shape: [...out] }];
    case 2:
      return roundTrip(shape, int);
    default:
      return [];
  }
}

/** View ops that leave `shape` as it was (each rule still runs and hands on a view). */
function roundTrip(shape: number[], int: (n: number) => number): ShapeOp[] {
  const n = shape.length;
  switch (int(4)) {
    case 0:
      if (n < 2) return [];
      return [
        { op: 'transpose', d0: 0, d1: n - 1 },
        { op: 'transpose', d0: 0, d1: n - 1 },
      ];
    case 1:
      return [
        { op: 'unsqueeze', dim: 0 },
        { op: 'squeeze', dim: 0 },
      ];
    case 2:
      return [
        { op: 'flatten', start: 0, end: -1 },
        { op: 'view', shape: [...shape] },
      ];
    default:
      return [];
  }
}

// ---- the plain-JS reference -------------------------------------------------------------------

function permuteRef(x: Arr, dims: number[]): Arr {
  const shape = dims.map((d) => x.shape[d]);
  const data = Array.from({ length: numel(shape) }, (_, i) => {
    const o = unravel(i, shape);
    const idx = new Array<number>(dims.length);
    dims.forEach((d, k) => (idx[d] = o[k]));
    return x.data[ravel(idx, x.shape)];
  });
  return { data, shape };
}

const norm = (d: number, n: number) => (d < 0 ? d + n : d);

export function shapeOpRef(x: Arr, o: ShapeOp): Arr {
  const n = x.shape.length;
  switch (o.op) {
    case 'permute':
      return permuteRef(x, o.dims);
    case 'transpose': {
      const dims = x.shape.map((_, i) => i);
      [dims[o.d0], dims[o.d1]] = [dims[o.d1], dims[o.d0]];
      return permuteRef(x, dims);
    }
    case 'reshape':
    case 'view':
      return { data: x.data, shape: [...o.shape] };
    case 'flatten': {
      const s = norm(o.start, n);
      const e = norm(o.end, n);
      return { data: x.data, shape: [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)] };
    }
    case 'unsqueeze':
      return { data: x.data, shape: [...x.shape.slice(0, o.dim), 1, ...x.shape.slice(o.dim)] };
    case 'squeeze':
      return { data: x.data, shape: x.shape.filter((_, i) => i !== o.dim) };
    case 'expand':
      return { data: Array.from({ length: numel(o.shape) }, (_, i) => bread(x, unravel(i, o.shape))), shape: [...o.shape] };
    case 'slice':
    case 'narrow': {
      const [start, end, step] = o.op === 'slice' ? [o.start, o.end, o.step] : [o.start, o.start + o.length, 1];
      const shape = [...x.shape];
      shape[o.dim] = Math.ceil((end - start) / step);
      const data = Array.from({ length: numel(shape) }, (_, i) => {
        const idx = unravel(i, shape);
        idx[o.dim] = start + idx[o.dim] * step;
        return x.data[ravel(idx, x.shape)];
      });
      return { data, shape };
    }
  }
}

function shapeAfter(shape: number[], ops: ShapeOp[]): number[] {
  return ops.reduce((x, o) => shapeOpRef(x, o), { data: new Array(numel(shape)).fill(0), shape } as Arr).shape;
}

const BIN = { add: (a: number, b: number) => a + b, sub: (a: number, b: number) => a - b, mul: (a: number, b: number) => a * b };

/** sum(out * seed) for one pass, in float64, with the leaves holding `values`. */
export function passLoss(p: Program, pass: Pass, values: number[][]): number {
  const term = (t: Term) => t.ops.reduce(shapeOpRef, { data: values[t.leaf], shape: p.leaves[t.leaf].shape });
  let acc = term(p.terms[0]);
  p.combine.forEach((op, k) => (acc = mapRef([acc, term(p.terms[k + 1])], BIN[op])));
  acc = p.roundTrip.reduce(shapeOpRef, acc);
  let out = mapRef([{ data: pass.x, shape: p.out }, acc], BIN.mul);
  if (p.inplace) out = mapRef([out, term(p.inplace.term)], p.inplace.op === 'mul_' ? BIN.mul : BIN.add);
  return out.data.reduce((s, v, i) => s + v * (pass.seed ? pass.seed[i] : 1), 0);
}

/** Central finite differences of passLoss with respect to every element of leaf `i`. */
export function fdGrad(p: Program, pass: Pass, i: number, eps = 1e-4): number[] {
  const values = p.leaves.map((l) => [...l.data]);
  return values[i].map((v, j) => {
    values[i][j] = v + eps;
    const up = passLoss(p, pass, values);
    values[i][j] = v - eps;
    const down = passLoss(p, pass, values);
    values[i][j] = v;
    return (up - down) / (2 * eps);
  });
}

/** Applies a .grad edit to the reference accumulation (null: no .grad). */
export function editRef(g: number[] | null, e: GradEdit): number[] | null {
  if (!g) return null;
  switch (e.kind) {
    case 'scale':
      return g.map((v) => v * e.c);
    case 'shift':
      return g.map((v) => v + e.c);
    case 'zero':
      return g.map(() => 0);
    case 'none':
      return null;
    case 'set':
      return g.map((v, j) => (j === e.index ? e.value : v));
  }
}

// ---- tsnn ---------------------------------------------------------------------------------------

export function shapeOp(x: Tensor, o: ShapeOp): Tensor {
  switch (o.op) {
    case 'permute':
      return x.permute(o.dims);
    case 'transpose':
      return x.transpose(o.d0, o.d1);
    case 'reshape':
      return x.reshape(o.shape);
    case 'view':
      // view() needs contiguous strides; on a strided input reshape (which copies) is the same value
      return x.isContiguous ? x.view(o.shape) : x.reshape(o.shape);
    case 'flatten':
      return x.flatten(o.start, o.end);
    case 'unsqueeze':
      return x.unsqueeze(o.dim);
    case 'squeeze':
      return x.squeeze(o.dim);
    case 'expand':
      return x.expand(o.shape);
    case 'slice':
      return x.slice(o.dim, o.start, o.end, o.step);
    case 'narrow':
      return x.narrow(o.dim, o.start, o.length);
  }
}

/** Runs one pass on tsnn: forward through the program, then backward (twice if asked) into the leaves' .grad. */
export function runPass(p: Program, pass: Pass, leaves: Tensor[], device: DeviceName): void {
  const term = (t: Term) => t.ops.reduce(shapeOp, leaves[t.leaf]);
  let acc = term(p.terms[0]);
  p.combine.forEach((op, k) => (acc = acc[op](term(p.terms[k + 1]))));
  acc = p.roundTrip.reduce(shapeOp, acc);
  const out = tensor(pass.x, { shape: p.out, device }).mul(acc);
  if (p.inplace) out[p.inplace.op](term(p.inplace.term));
  const seed = pass.seed ? tensor(pass.seed, { shape: p.out, device }) : null;
  const loss = seed ? out : out.sum();
  for (let k = pass.twice ? 2 : 1; k > 0; k--) loss.backward(seed ?? undefined, { retainGraph: k > 1 });
  // a .grad must not share memory with the caller's seed
  if (seed) noGrad(() => seed.mul_(-3));
}

/** Applies a .grad edit on tsnn, in place as a user or an optimizer would. */
export function editGrad(leaf: Tensor, e: GradEdit): void {
  const g = leaf.grad;
  if (!g) return;
  noGrad(() => {
    if (e.kind === 'scale') g.mul_(e.c);
    else if (e.kind === 'shift') g.add_(e.c);
    else if (e.kind === 'zero') g.zero_();
    else if (e.kind === 'none') leaf.grad = null;
    else if (e.kind === 'set') g.reshape([-1]).narrow(0, e.index, 1).fill_(e.value); // through a view of .grad
  });
}

// `node dist/test/ops/view-programs.js SEED...` prints those programs as JSON, for gen_accumulation.py
if (require.main === module) {
  const seeds = process.argv.slice(2).map(Number);
  process.stdout.write(
    JSON.stringify(
      seeds.map((seed) => ({ seed, program: genProgram(seed) })),
      null,
      1,
    ) + '\n',
  );
}
