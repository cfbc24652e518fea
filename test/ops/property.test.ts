/**
 * Property-based tests (fast-check) over random shapes, broadcast pairs and strided layouts:
 * elementwise binary ops and reductions equal a plain-JS reference computed from toArray(), and
 * their autograd gradients equal finite differences; the same for matmul over random sizes, batches
 * and layouts; in-place writes and gradients through random chains of views. Runs are few (each new shape compiles kernels)
 * and dims small; shapes repeat across runs, so kernels are reused.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { arange, ops, Tensor, tensor, DeviceName } from '../../src';
import { checkGrad, expectClose, testDevices } from '../helpers';
import { Arr, broadcastShape, mapRef, numel, ravel, reduceRef, unravel } from './util';

const RUNS = 15;
/** fixed for reproducible runs; FC_SEED=n explores others */
const SEED = Number(process.env.FC_SEED) || 20240611;

/** A deterministic LCG stream from a fast-check-chosen seed. */
function stream(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Values on a 0.1 grid (+0.05 when `half`): two draws from different grids are ≥ 0.05 apart, more than the FD step. */
function gridValues(n: number, seed: number, lo: number, hi: number, half: boolean): number[] {
  const r = stream(seed);
  const steps = Math.round((hi - lo) * 10);
  return Array.from({ length: n }, () => lo + Math.floor(r() * steps) / 10 + (half ? 0.05 : 0));
}

/** Distinct values (a shuffled grid), so max/min have no ties and no kinks within the FD step. */
function distinctValues(n: number, seed: number): number[] {
  const r = stream(seed);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.1);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return v;
}

/**
 * A tensor holding `data` (row-major for `shape`), either contiguous or as a strided view: a permuted
 * copy of it permuted back, so kernels read through non-trivial strides.
 */
function make(data: number[], shape: number[], device: DeviceName, perm: number[] | null): Tensor {
  if (!perm || shape.length < 2) return tensor(Float32Array.from(data), { shape, device });
  const pshape = perm.map((d) => shape[d]);
  const pdata = Array.from({ length: numel(pshape) }, (_, i) => {
    const pidx = unravel(i, pshape);
    const idx = new Array<number>(shape.length);
    perm.forEach((d, k) => (idx[d] = pidx[k]));
    return data[ravel(idx, shape)];
  });
  const inv = new Array<number>(perm.length);
  perm.forEach((d, k) => (inv[d] = k));
  return tensor(Float32Array.from(pdata), { shape: pshape, device }).permute(inv);
}

const dimArb = fc.integer({ min: 1, max: 3 });

/** [out, aShape, bShape]: a and b broadcast to out (some dims 1, some leading dims dropped). */
const broadcastPairArb = fc
  .array(dimArb, { minLength: 0, maxLength: 3 })
  .chain((out) =>
    fc.tuple(
      fc.constant(out),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
      fc.integer({ min: 0, max: out.length }),
      fc.integer({ min: 0, max: out.length }),
    ),
  )
  .map(([out, ma, mb, da, db]) => {
    const a = out.map((d, i) => (ma[i] ? 1 : d)).slice(da);
    const b = out.map((d, i) => (mb[i] ? 1 : d)).slice(db);
    return { out: broadcastShape(a, b), a, b };
  });

/** A random permutation of 0..n-1 (or null: contiguous). */
const permArb = (n: number) =>
  fc.option(
    fc.shuffledSubarray(
      Array.from({ length: n }, (_, i) => i),
      { minLength: n, maxLength: n },
    ),
    { nil: null },
  );

type BinOp = {
  name: string;
  f: (a: Tensor, b: Tensor) => Tensor;
  ref: (a: number, b: number) => number;
  a: [number, number];
  b: [number, number];
  bNonZero?: boolean;
};
const BIN: BinOp[] = [
  { name: 'add', f: ops.add, ref: (a, b) => a + b, a: [-2, 2], b: [-2, 2] },
  { name: 'sub', f: ops.sub, ref: (a, b) => a - b, a: [-2, 2], b: [-2, 2] },
  { name: 'mul', f: ops.mul, ref: (a, b) => a * b, a: [-2, 2], b: [-2, 2] },
  { name: 'div', f: ops.div, ref: (a, b) => a / b, a: [-2, 2], b: [0.5, 2], bNonZero: true },
  { name: 'pow', f: ops.pow, ref: (a, b) => a ** b, a: [0.5, 2], b: [-2, 2] },
  { name: 'maximum', f: ops.maximum, ref: Math.max, a: [-2, 2], b: [-2, 2] },
  { name: 'minimum', f: ops.minimum, ref: Math.min, a: [-2, 2], b: [-2, 2] },
];

function binInputs(
  op: BinOp,
  sa: number[],
  sb: number[],
  seed: number,
  device: DeviceName,
  pa: number[] | null,
  pb: number[] | null,
): [Tensor, Tensor, Arr, Arr] {
  const av = gridValues(numel(sa), seed, op.a[0], op.a[1], true);
  let bv = gridValues(numel(sb), seed ^ 0x5bd1e995, op.b[0], op.b[1], false);
  if (op.bNonZero) bv = bv.map((v, i) => (i % 2 ? -v : v)); // both signs, |b| >= 0.5
  return [make(av, sa, device, pa), make(bv, sb, device, pb), { data: av, shape: sa }, { data: bv, shape: sb }];
}

/** One step of a random view chain: [op, a, b, step]. */
type ViewStep = ['permute' | 'slice' | 'narrow' | 'unsqueeze' | 'squeeze' | 'transpose', number, number, number];
const viewChainArb = fc.array(
  fc.tuple(
    fc.constantFrom('permute', 'slice', 'narrow', 'unsqueeze', 'squeeze', 'transpose'),
    fc.nat(100),
    fc.nat(100),
    fc.integer({ min: 1, max: 3 }),
  ),
  { maxLength: 4 },
) as fc.Arbitrary<ViewStep[]>;

/** Applies a view chain (every step a view: shared storage, new shape/strides/offset). */
function applyChain(x: Tensor, chain: ViewStep[]): Tensor {
  let v = x;
  for (const [k, a, b, step] of chain) {
    if (v.ndim === 0) break;
    const d = a % v.ndim;
    if (k === 'permute') {
      const p = v.shape.map((_, i) => i);
      for (let i = p.length - 1; i > 0; i--) {
        const j = (a * 7 + b + i) % (i + 1);
        [p[i], p[j]] = [p[j], p[i]];
      }
      v = v.permute(p);
    } else if (k === 'slice') v = v.slice(d, b % v.shape[d], undefined, step);
    else if (k === 'narrow') {
      const s = b % v.shape[d];
      v = v.narrow(d, s, Math.max(1, Math.min(v.shape[d] - s, step)));
    } else if (k === 'unsqueeze') v = v.unsqueeze(a % (v.ndim + 1));
    else if (k === 'squeeze') v = v.squeeze();
    else if (v.ndim >= 2) v = v.transpose(d, (d + 1) % v.ndim);
  }
  return v;
}

describe('ops: properties (fast-check)', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it('binary elementwise ops equal the JS reference for random broadcast pairs and layouts', () => {
        fc.assert(
          fc.property(
            broadcastPairArb.chain((p) => fc.tuple(fc.constant(p), permArb(p.a.length), permArb(p.b.length))),
            fc.integer({ min: 1, max: 2 ** 30 }),
            ([{ a: sa, b: sb, out }, pa, pb], seed) => {
              for (const op of BIN) {
                const [a, b, ra, rb] = binInputs(op, sa, sb, seed, device, pa, pb);
                const y = op.f(a, b);
                expect(y.shape, `${op.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`).to.deep.equal(out);
                expectClose(y, mapRef([ra, rb], op.ref).data, 1e-5, 1e-5, `${op.name} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
              }
            },
          ),
          { numRuns: RUNS, seed: SEED },
        );
      });
      it('binary elementwise gradients equal finite differences (broadcast inputs get summed gradients)', () => {
        fc.assert(
          fc.property(
            broadcastPairArb.chain((p) => fc.tuple(fc.constant(p), permArb(p.a.length))),
            fc.constantFrom(...BIN),
            fc.integer({ min: 1, max: 2 ** 30 }),
            ([{ a: sa, b: sb }, pa], op, seed) => {
              const [a, b] = binInputs(op, sa, sb, seed, device, pa, null);
              checkGrad(op.f, [a, b]);
            },
          ),
          { numRuns: RUNS, seed: SEED },
        );
      });

      it('in-place ops through random view chains write exactly the viewed elements of the base', () => {
        fc.assert(
          fc.property(
            fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
            viewChainArb,
            fc.constantFrom('mul_', 'fill_', 'add_', 'copy_'),
            (shape, chain, op) => {
              const n = numel(shape);
              const base = arange(n, undefined, undefined, { device }).reshape(shape);
              const v = applyChain(base, chain);
              // which base elements the view covers, in its row-major order (base holds its own indices)
              const covered = Array.from(v.dataSync());
              const want = Array.from({ length: n }, (_, i) => i);
              const o = arange(v.numel(), undefined, undefined, { device }).reshape(v.shape);
              if (op === 'mul_') v.mul_(2);
              else if (op === 'fill_') v.fill_(-7);
              else if (op === 'add_') v.add_(o);
              else v.copy_(o.neg());
              covered.forEach((bi, k) => (want[bi] = op === 'mul_' ? 2 * bi : op === 'fill_' ? -7 : op === 'add_' ? bi + k : -k));
              expectClose(
                base,
                want,
                0,
                0,
                `${op} through ${JSON.stringify(chain)} of ${JSON.stringify(shape)} (view ${JSON.stringify(v.shape)}, strides ${JSON.stringify(v.strides)}, offset ${v.offset})`,
              );
            },
          ),
          { numRuns: 3 * RUNS, seed: SEED }, // cheap (few kernels per run), so more runs
        );
      });
      it('gradients through random view chains equal finite differences', () => {
        fc.assert(
          fc.property(
            fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
            viewChainArb,
            fc.integer({ min: 1, max: 2 ** 30 }),
            (shape, chain, seed) => {
              const x = make(gridValues(numel(shape), seed, -2, 2, true), shape, device, null);
              checkGrad((t) => applyChain(t, chain).mul(applyChain(t, chain)), [x]);
            },
          ),
          { numRuns: RUNS, seed: SEED },
        );
      });

      /** [aShape, bShape, transpose a?, transpose b?]: M, K, N in 1..max, broadcast batch dims */
      const matmulArb = (max: number, batchDims = 2) =>
        fc
          .tuple(
            fc.integer({ min: 1, max }),
            fc.integer({ min: 1, max }),
            fc.integer({ min: 1, max }),
            fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: batchDims }),
            fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
            fc.nat(2),
            fc.boolean(),
            fc.boolean(),
          )
          .map(([M, K, N, batch, ones, drop, ta, tb]) => ({
            sa: [...batch.map((d, i) => (ones[i] ? 1 : d)), M, K],
            sb: [...batch.slice(Math.min(drop, batch.length)), K, N],
            ta,
            tb,
          }));
      /** a tensor whose last two dims are a transposed view (column-major storage) when `t` */
      const matOperand = (data: number[], shape: number[], t: boolean): Tensor => {
        const x = tensor(Float32Array.from(data), { shape, device });
        return t ? x.transpose(-1, -2).contiguous().transpose(-1, -2) : x;
      };
      const matRef = (a: Arr, b: Arr): Arr => {
        const [M, K] = a.shape.slice(-2);
        const N = b.shape[b.shape.length - 1];
        const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
        const off = (x: Arr, bidx: number[]) => {
          const tb = x.shape.slice(0, -2);
          const lead = batch.length - tb.length;
          return (
            ravel(
              tb.map((d, i) => (d === 1 ? 0 : bidx[i + lead])),
              tb,
            ) *
            x.shape[x.shape.length - 2] *
            x.shape[x.shape.length - 1]
          );
        };
        const data: number[] = [];
        for (let bi = 0; bi < numel(batch); bi++) {
          const oa = off(a, unravel(bi, batch));
          const ob = off(b, unravel(bi, batch));
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) {
              let acc = 0;
              for (let k = 0; k < K; k++) acc += a.data[oa + m * K + k] * b.data[ob + k * N + n];
              data.push(acc);
            }
        }
        return { data, shape: [...batch, M, N] };
      };
      it('matmul equals the JS reference for random sizes, broadcast batches and transposed layouts', () => {
        fc.assert(
          fc.property(matmulArb(9), fc.integer({ min: 1, max: 2 ** 30 }), ({ sa, sb, ta, tb }, seed) => {
            const av = gridValues(numel(sa), seed, -2, 2, true);
            const bv = gridValues(numel(sb), seed ^ 0x5bd1e995, -2, 2, false);
            const y = matOperand(av, sa, ta).matmul(matOperand(bv, sb, tb));
            const r = matRef({ data: av, shape: sa }, { data: bv, shape: sb });
            expect(y.shape).to.deep.equal(r.shape);
            expectClose(y, r.data, 1e-4, 1e-5, `${JSON.stringify(sa)}${ta ? 'ᵀ' : ''} @ ${JSON.stringify(sb)}${tb ? 'ᵀ' : ''}`);
          }),
          { numRuns: RUNS, seed: SEED },
        );
      });
      it('matmul gradients equal finite differences', () => {
        fc.assert(
          // small: finite differences cost two forward passes per input element
          fc.property(matmulArb(3, 1), fc.integer({ min: 1, max: 2 ** 30 }), ({ sa, sb, ta, tb }, seed) => {
            checkGrad(
              (a, b) => a.matmul(b),
              [matOperand(gridValues(numel(sa), seed, -2, 2, true), sa, ta), matOperand(gridValues(numel(sb), seed + 1, -2, 2, false), sb, tb)],
            );
          }),
          { numRuns: RUNS, seed: SEED },
        );
      });

      /** shape (rank 1-3, dims 1-4), the dims to reduce (null: all), keepdim, a layout */
      const reduceArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }).chain((shape) =>
        fc.tuple(
          fc.constant(shape),
          fc.option(
            fc.subarray(
              shape.map((_, i) => i),
              { minLength: 1 },
            ),
            { nil: null },
          ),
          fc.boolean(),
          permArb(shape.length),
          fc.integer({ min: 1, max: 2 ** 30 }),
        ),
      );
      type RedOp = {
        name: string;
        f: (x: Tensor, dims: number[] | undefined, keep: boolean) => Tensor;
        ref: (x: Arr, dims: number[], keep: boolean) => Arr;
        single?: boolean;
      };
      const varRef = (x: Arr, dims: number[], keep: boolean): Arr => {
        const m = reduceRef(
          x,
          dims,
          true,
          0,
          (a, v) => a + v,
          (a, n) => a / n,
        );
        const sq = x.data.map(
          (v, i) =>
            (v -
              m.data[
                ravel(
                  unravel(i, x.shape).map((k, d) => (dims.includes(d) ? 0 : k)),
                  m.shape,
                )
              ]) **
            2,
        );
        return reduceRef(
          { data: sq, shape: x.shape },
          dims,
          keep,
          0,
          (a, v) => a + v,
          (a, n) => a / (n - 1),
        );
      };
      const RED: RedOp[] = [
        { name: 'sum', f: (x, d, k) => x.sum(d, k), ref: (x, d, k) => reduceRef(x, d, k, 0, (a, v) => a + v) },
        {
          name: 'mean',
          f: (x, d, k) => x.mean(d, k),
          ref: (x, d, k) =>
            reduceRef(
              x,
              d,
              k,
              0,
              (a, v) => a + v,
              (a, n) => a / n,
            ),
        },
        { name: 'var', f: (x, d, k) => x.var(d, { keepdim: k }), ref: varRef },
        { name: 'max', f: (x, d, k) => x.max(d?.[0], k), ref: (x, d, k) => reduceRef(x, d, k, -Infinity, Math.max), single: true },
        { name: 'min', f: (x, d, k) => x.min(d?.[0], k), ref: (x, d, k) => reduceRef(x, d, k, Infinity, Math.min), single: true },
        {
          name: 'logsumexp',
          f: (x, d, k) => ops.logsumexp(x, d![0], k),
          ref: (x, d, k) => reduceRef({ data: x.data.map(Math.exp), shape: x.shape }, d, k, 0, (a, v) => a + v, Math.log),
          single: true,
        },
      ];
      /** The dims an op reduces: max/min/logsumexp take one dim (or, except logsumexp, none: all, without keepdim). */
      const dimsFor = (
        op: RedOp,
        shape: number[],
        dims: number[] | null,
        keep: boolean,
      ): { arg: number[] | undefined; ref: number[]; keep: boolean } => {
        const all = shape.map((_, i) => i);
        if (op.name === 'logsumexp') return { arg: [dims?.[0] ?? 0], ref: [dims?.[0] ?? 0], keep };
        if (op.single) return dims ? { arg: [dims[0]], ref: [dims[0]], keep } : { arg: undefined, ref: all, keep: false };
        return { arg: dims ?? undefined, ref: dims ?? all, keep: dims ? keep : false };
      };

      it('reductions equal the JS reference for random shapes, dims, keepdim and layouts', () => {
        fc.assert(
          fc.property(reduceArb, ([shape, dims, keep, perm, seed]) => {
            const data = distinctValues(numel(shape), seed);
            const x = make(data, shape, device, perm);
            for (const op of RED) {
              if (op.name === 'var' && numel((dims ?? shape.map((_, i) => i)).map((d) => shape[d])) < 2) continue;
              const d = dimsFor(op, shape, dims, keep);
              const y = op.f(x, d.arg, d.keep);
              const r = op.ref({ data, shape }, d.ref, d.keep);
              const what = `${op.name}(${JSON.stringify(d.arg)}, ${d.keep}) of ${JSON.stringify(shape)}`;
              expect(y.shape, what).to.deep.equal(r.shape);
              expectClose(y, r.data, 1e-5, 1e-4, what);
            }
          }),
          { numRuns: RUNS, seed: SEED },
        );
      });
      it('reduction gradients equal finite differences', () => {
        fc.assert(
          fc.property(reduceArb, fc.constantFrom(...RED), ([shape, dims, keep, perm, seed], op) => {
            if (op.name === 'var' && numel((dims ?? shape.map((_, i) => i)).map((d) => shape[d])) < 2) return;
            const x = make(distinctValues(numel(shape), seed), shape, device, perm);
            const d = dimsFor(op, shape, dims, keep);
            checkGrad((t) => op.f(t, d.arg, d.keep), [x]);
          }),
          { numRuns: RUNS, seed: SEED },
        );
      });
    });
  }
});
