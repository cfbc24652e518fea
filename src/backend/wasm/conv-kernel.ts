/**
 * The implicit-GEMM convolution micro-kernels (conv-lowering.ts), emitted like gemm-kernel.ts's: the same
 * 4x8 register tile (MR rows broadcast from a packed A panel, NR = 8 columns as two f32x4 vectors), but B
 * is never a packed matrix. The image lives in the arena as zero-padded, stride-phase planes (pack-image.ts),
 * where every patch row k of the im2col matrix is one contiguous run starting at a per-k offset, so:
 *  - `fwd{r}`: C[m, p] = sum_k A[m, k] img[koff[k] + p]: B's k-th row is read at `koff[k]` (a table
 *    in the arena, byte offsets), C stored row-major (`ldc`), or added to C (`accumulate`, K blocks).
 *  - `gx{r}`:  img[roff[m] + p] += sum_k A[m, k] B[k, p], B row-major in place (`ldb`): the transposed
 *    product scattered back into the padded image through the same offsets (col2im in the epilogue).
 *    Rows of one tile may hit overlapping cells (neighbouring taps): each row's read-add-write finishes
 *    before the next row's, so the sums are exact in any case.
 *  - `gw{r}`: out[o, k] += sum_p G[o, p] img[koff[k] + p] for r rows of G and k in pairs: vectors run
 *    along p (both operands contiguous there), 2r accumulators, summed across lanes at the end.
 * No unrolling, for the reason gemm.ts gives (TurboFan spills an unrolled body; it unrolls this loop itself).
 */
import { Code, encodeModule, FunctionDef } from './emitter';

export const MR = 4;
export const NR = 8;

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

// scalar opcodes the emitter does not have (memarg: log2 alignment, static offset)
function mem(c: Code, opcode: number, offset: number): void {
  c.bytes.push(opcode);
  uleb(2, c.bytes);
  uleb(offset, c.bytes);
}
const i32Load = (c: Code, offset = 0) => mem(c, 0x28, offset);
const f32Load = (c: Code, offset = 0) => mem(c, 0x2a, offset);
const f32Store = (c: Code, offset = 0) => mem(c, 0x38, offset);
const f32Add = (c: Code) => c.bytes.push(0x92);
function extractLane(c: Code, lane: number): void {
  c.bytes.push(0xfd);
  uleb(0x1f, c.bytes);
  c.bytes.push(lane);
}

function madd(c: Code, fma: boolean, x: number, y: number, acc: number): void {
  if (fma) c.get(x).get(y).get(acc).simd('f32x4.relaxed_madd').set(acc);
  else c.get(acc).get(x).get(y).simd('f32x4.mul').simd('f32x4.add').set(acc);
}

/**
 * fwd: (ap, bbase, cp, nTiles, kc, ldc, koff, accumulate); gx: (ap, bp, cbase, nTiles, kc, ldb, roff).
 * Tile j reads B columns 8j..8j+7 (bbase/bp + 32j) and writes C columns 8j.. (cp/cbase + 32j).
 */
function tileFunction(mode: 'fwd' | 'gx', rows: number, fma: boolean): Code {
  const V = NR / 4;
  const fwd = mode === 'fwd';
  const c = new Code(fwd ? ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32'] : ['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [AP, B0, C0, NT, KC, PITCH, TABLE, ACC] = [0, 1, 2, 3, 4, 5, 6, 7];
  const a = c.local('i32');
  const b = c.local('i32');
  const k = c.local('i32');
  const j = c.local('i32');
  const cp = c.local('i32');
  const bj = c.local('i32');
  const kp = c.local('i32');
  const ro = Array.from({ length: fwd ? 0 : rows }, () => c.local('i32'));
  const acc: number[][] = [];
  for (let r = 0; r < rows; r++) acc.push(Array.from({ length: V }, () => c.local('v128')));
  const bv = Array.from({ length: V }, () => c.local('v128'));
  const av = c.local('v128');

  c.get(C0).set(cp);
  c.get(B0).set(bj);
  c.get(NT).set(j);
  for (let r = 0; r < ro.length; r++) {
    c.get(TABLE);
    i32Load(c, r * 4);
    c.set(ro[r]);
  }
  c.block(() => {
    c.get(j).op('i32.eqz').brIf(0);
    c.loop(() => {
      for (let r = 0; r < rows; r++) for (let v = 0; v < V; v++) c.i32(0).simd('i32x4.splat').set(acc[r][v]);
      c.get(AP).set(a);
      c.get(KC).set(k);
      if (fwd) c.get(TABLE).set(kp);
      else c.get(bj).set(b);
      c.block(() => {
        c.get(k).op('i32.eqz').brIf(0);
        c.loop(() => {
          if (fwd) {
            // this k's patch row: the tile's columns at the tap's offset into the image
            c.get(bj).get(kp);
            i32Load(c);
            c.op('i32.add').set(b);
            c.get(kp).i32(4).op('i32.add').set(kp);
          }
          for (let v = 0; v < V; v++)
            c.get(b)
              .simd('v128.load', v * 16)
              .set(bv[v]);
          if (!fwd) c.get(b).get(PITCH).op('i32.add').set(b);
          for (let r = 0; r < rows; r++) {
            c.get(a)
              .simd('v128.load32_splat', r * 4)
              .set(av);
            for (let v = 0; v < V; v++) madd(c, fma, av, bv[v], acc[r][v]);
          }
          c.get(a)
            .i32(MR * 4)
            .op('i32.add')
            .set(a);
          c.get(k).i32(1).op('i32.sub').tee(k).brIf(0);
        });
      });
      if (fwd) {
        c.block(() => {
          c.get(ACC).op('i32.eqz').brIf(0);
          for (let r = 0; r < rows; r++)
            for (let v = 0; v < V; v++) {
              c.get(acc[r][v]).get(cp);
              if (r > 0) c.i32(r).get(PITCH).op('i32.mul').op('i32.add');
              c.simd('v128.load', v * 16)
                .simd('f32x4.add')
                .set(acc[r][v]);
            }
        });
        for (let r = 0; r < rows; r++)
          for (let v = 0; v < V; v++) {
            c.get(cp);
            if (r > 0) c.i32(r).get(PITCH).op('i32.mul').op('i32.add');
            c.get(acc[r][v]).simd('v128.store', v * 16);
          }
      } else {
        // scatter-add, one row's read-add-write after the other (rows may overlap)
        for (let r = 0; r < rows; r++)
          for (let v = 0; v < V; v++) {
            c.get(cp).get(ro[r]).op('i32.add').tee(b);
            c.get(b)
              .simd('v128.load', v * 16)
              .get(acc[r][v])
              .simd('f32x4.add')
              .simd('v128.store', v * 16);
          }
      }
      c.get(cp)
        .i32(NR * 4)
        .op('i32.add')
        .set(cp);
      c.get(bj)
        .i32(NR * 4)
        .op('i32.add')
        .set(bj);
      c.get(j).i32(1).op('i32.sub').tee(j);
      c.brIf(0);
    });
  });
  return c;
}

/**
 * gw: (gp, gpitch, xbase, koff, pairs, steps, op, ldo): for each pair t of taps (koff[2t], koff[2t+1]),
 * out[r*ldo + 8t + 4u] += sum over `steps` vectors of G row r (gp + r*gpitch) * image at xbase + koff.
 */
function gwFunction(rows: number, fma: boolean): Code {
  const c = new Code(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [GP, GPITCH, XB, KP, PAIRS, STEPS, OP, LDO] = [0, 1, 2, 3, 4, 5, 6, 7];
  const g = Array.from({ length: rows }, () => c.local('i32'));
  const b0 = c.local('i32');
  const b1 = c.local('i32');
  const q = c.local('i32');
  const s = c.local('i32');
  const t = c.local('i32');
  const kp = c.local('i32');
  const op = c.local('i32');
  const acc = Array.from({ length: rows }, () => [c.local('v128'), c.local('v128')]);
  const x0 = c.local('v128');
  const x1 = c.local('v128');
  const gv = c.local('v128');

  for (let r = 0; r < rows; r++) {
    c.get(GP);
    if (r > 0) c.i32(r).get(GPITCH).op('i32.mul').op('i32.add');
    c.set(g[r]);
  }
  c.get(KP).set(kp);
  c.get(OP).set(op);
  c.get(PAIRS).set(t);
  c.block(() => {
    c.get(t).op('i32.eqz').brIf(0);
    c.loop(() => {
      c.get(XB).get(kp);
      i32Load(c, 0);
      c.op('i32.add').set(b0);
      c.get(XB).get(kp);
      i32Load(c, 4);
      c.op('i32.add').set(b1);
      for (const pr of acc) for (const a of pr) c.i32(0).simd('i32x4.splat').set(a);
      c.i32(0).set(q);
      c.get(STEPS).set(s);
      c.block(() => {
        c.get(s).op('i32.eqz').brIf(0);
        c.loop(() => {
          c.get(b0).get(q).op('i32.add').simd('v128.load', 0).set(x0);
          c.get(b1).get(q).op('i32.add').simd('v128.load', 0).set(x1);
          for (let r = 0; r < rows; r++) {
            c.get(g[r]).get(q).op('i32.add').simd('v128.load', 0).set(gv);
            madd(c, fma, gv, x0, acc[r][0]);
            madd(c, fma, gv, x1, acc[r][1]);
          }
          c.get(q).i32(16).op('i32.add').set(q);
          c.get(s).i32(1).op('i32.sub').tee(s).brIf(0);
        });
      });
      for (let r = 0; r < rows; r++)
        for (let u = 0; u < 2; u++) {
          // address, then old value + (lane0 + lane1) + (lane2 + lane3)
          c.get(op);
          if (r > 0) c.i32(r).get(LDO).op('i32.mul').op('i32.add');
          c.get(op);
          if (r > 0) c.i32(r).get(LDO).op('i32.mul').op('i32.add');
          f32Load(c, u * 4);
          c.get(acc[r][u]);
          extractLane(c, 0);
          c.get(acc[r][u]);
          extractLane(c, 1);
          f32Add(c);
          c.get(acc[r][u]);
          extractLane(c, 2);
          c.get(acc[r][u]);
          extractLane(c, 3);
          f32Add(c);
          f32Add(c);
          f32Add(c);
          f32Store(c, u * 4);
        }
      c.get(kp).i32(8).op('i32.add').set(kp);
      c.get(op).i32(8).op('i32.add').set(op);
      c.get(t).i32(1).op('i32.sub').tee(t).brIf(0);
    });
  });
  return c;
}

/**
 * copy: (dst, src, runs, n, bias, per): n runs of (src byte offset, dst byte offset, count) i32 triples at
 * `runs`; each copies `count` floats from src + offset to dst + offset, adding the float at `bias`, which
 * moves to the next float every `per` runs (an output channel's rows; point it at a zero for a plain copy).
 * Four floats a step, then one at a time.
 */
function copyFunction(): Code {
  const c = new Code(['i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [DST, SRC, RUNS, N, BIAS, PER] = [0, 1, 2, 3, 4, 5];
  const s = c.local('i32');
  const d = c.local('i32');
  const cnt = c.local('i32');
  const left = c.local('i32');
  const bv = c.local('v128');
  const loadBias = () => {
    c.get(BIAS);
    f32Load(c);
    c.bytes.push(0xfd);
    uleb(0x13, c.bytes); // f32x4.splat
    c.set(bv);
  };
  loadBias();
  c.get(PER).set(left);
  c.block(() => {
    c.get(N).op('i32.eqz').brIf(0);
    c.loop(() => {
      c.get(SRC).get(RUNS);
      i32Load(c, 0);
      c.op('i32.add').set(s);
      c.get(DST).get(RUNS);
      i32Load(c, 4);
      c.op('i32.add').set(d);
      c.get(RUNS);
      i32Load(c, 8);
      c.set(cnt);
      c.get(RUNS).i32(12).op('i32.add').set(RUNS);
      c.block(() => {
        c.get(cnt).i32(4).op('i32.lt_s').brIf(0);
        c.loop(() => {
          c.get(d).get(s).simd('v128.load', 0).get(bv).simd('f32x4.add').simd('v128.store', 0);
          c.get(s).i32(16).op('i32.add').set(s);
          c.get(d).i32(16).op('i32.add').set(d);
          c.get(cnt).i32(4).op('i32.sub').tee(cnt).i32(4).op('i32.ge_s').brIf(0);
        });
      });
      c.block(() => {
        c.get(cnt).op('i32.eqz').brIf(0);
        c.loop(() => {
          c.get(d).get(s);
          f32Load(c);
          c.get(bv);
          extractLane(c, 0);
          f32Add(c);
          f32Store(c);
          c.get(s).i32(4).op('i32.add').set(s);
          c.get(d).i32(4).op('i32.add').set(d);
          c.get(cnt).i32(1).op('i32.sub').tee(cnt).brIf(0);
        });
      });
      // the next bias value after `per` runs
      c.block(() => {
        c.get(left).i32(1).op('i32.sub').tee(left).brIf(0);
        c.get(PER).set(left);
        c.get(BIAS).i32(4).op('i32.add').set(BIAS);
        loadBias();
      });
      c.get(N).i32(1).op('i32.sub').tee(N).brIf(0);
    });
  });
  return c;
}

/** The module: fwd1..fwd4, gx1..gx4, gw1..gw4, copy over an imported memory. */
export function convModuleBytes(fma: boolean): Uint8Array {
  const funcs: FunctionDef[] = [];
  for (let r = 1; r <= MR; r++) funcs.push({ name: `fwd${r}`, code: tileFunction('fwd', r, fma) });
  for (let r = 1; r <= MR; r++) funcs.push({ name: `gx${r}`, code: tileFunction('gx', r, fma) });
  for (let r = 1; r <= MR; r++) funcs.push({ name: `gw${r}`, code: gwFunction(r, fma) });
  funcs.push({ name: 'copy', code: copyFunction() });
  return encodeModule(funcs, { pages: 1 });
}
