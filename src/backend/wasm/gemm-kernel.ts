/**
 * The register-tiled SIMD matmul micro-kernel, emitted as a WebAssembly module (emitter.ts).
 *
 * Packed operands (pack.ts): an A panel holds MR rows of A k-major (`a[k*MR + r]`), a B panel NR columns
 * of B k-major (`b[k*NR + c]`); both zero-padded to whole panels. B may also be read in place as row-major
 * rows (`ldb` = its row pitch): panel j is then columns 8j..8j+7 of every row (columns past N are read
 * from the row's neighbour or padding and land in C's padding columns, which are dropped). `gemm{r}` computes r (<= MR) rows of C
 * against `nTiles` consecutive B panels: per k step, NR/4 vector loads of B and r broadcast loads of A feed
 * r*NR/4 accumulators that stay in registers for the whole k loop (unrolled by UNROLL, with static load
 * offsets). With `accumulate` the tile is added to C (K split into cache-sized blocks), otherwise stored.
 * C is row-major with `ldc` bytes per row and at least NR*nTiles columns (padded by the caller).
 *
 * The multiply-add is `f32x4.relaxed_madd` where the runtime validates it (features.ts), else mul + add:
 * both sum k in the same order; relaxed_madd may round once instead of twice.
 */
import { Code, encodeModule, FunctionDef } from './emitter';

export interface GemmShape {
  /** rows of a tile (accumulator rows) */
  MR: number;
  /** columns of a tile, a multiple of 4 */
  NR: number;
  /** k steps per loop iteration */
  UNROLL: number;
  /** use f32x4.relaxed_madd */
  fma: boolean;
}

function gemmFunction(s: GemmShape, rows: number): Code {
  const { MR, NR, UNROLL, fma } = s;
  const V = NR / 4;
  // params: ap, bp, cp, nTiles, kc, ldc, bStride (bytes from one B panel to the next), accumulate,
  // ldb (bytes from one k step of B to the next: NR*4 in a packed panel, the row pitch in a row-major B)
  const c = new Code(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [AP, BP, CP, NT, KC, LDC, BSTRIDE, ACC, LDB] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const a = c.local('i32');
  const b = c.local('i32');
  const k = c.local('i32');
  const j = c.local('i32');
  const cp = c.local('i32');
  const bj = c.local('i32');
  const acc: number[][] = [];
  for (let r = 0; r < rows; r++) acc.push(Array.from({ length: V }, () => c.local('v128')));
  const bv = Array.from({ length: V }, () => c.local('v128'));
  const av = c.local('v128');

  /** one k step: A at static offset u (in k steps) from the a pointer, B at the b pointer, which moves on by ldb */
  const step = (u: number) => {
    for (let v = 0; v < V; v++)
      c.get(b)
        .simd('v128.load', v * 16)
        .set(bv[v]);
    c.get(b).get(LDB).op('i32.add').set(b);
    for (let r = 0; r < rows; r++) {
      c.get(a)
        .simd('v128.load32_splat', (u * MR + r) * 4)
        .set(av);
      for (let v = 0; v < V; v++) {
        if (fma) c.get(av).get(bv[v]).get(acc[r][v]).simd('f32x4.relaxed_madd').set(acc[r][v]);
        else c.get(acc[r][v]).get(av).get(bv[v]).simd('f32x4.mul').simd('f32x4.add').set(acc[r][v]);
      }
    }
  };
  const advance = (steps: number) => {
    c.get(a)
      .i32(steps * MR * 4)
      .op('i32.add')
      .set(a);
    c.get(k).i32(steps).op('i32.sub').set(k);
  };

  c.get(CP).set(cp);
  c.get(BP).set(bj);
  c.get(NT).set(j);
  c.block(() => {
    c.get(j).op('i32.eqz').brIf(0);
    c.loop(() => {
      // zero the accumulators (a fresh v128 local is zero; reassign for every tile)
      for (let r = 0; r < rows; r++) for (let v = 0; v < V; v++) c.i32(0).simd('i32x4.splat').set(acc[r][v]);
      c.get(AP).set(a);
      c.get(bj).set(b);
      c.get(KC).set(k);
      // main loop: UNROLL k steps per iteration while k >= UNROLL
      c.block(() => {
        c.get(k).i32(UNROLL).op('i32.lt_s').brIf(0);
        c.loop(() => {
          for (let u = 0; u < UNROLL; u++) step(u);
          advance(UNROLL);
          c.get(k).i32(UNROLL).op('i32.ge_s').brIf(0);
        });
      });
      // the rest, one k step at a time
      if (UNROLL > 1) {
        c.block(() => {
          c.get(k).op('i32.eqz').brIf(0);
          c.loop(() => {
            step(0);
            advance(1);
            c.get(k).brIf(0);
          });
        });
      }
      // accumulate into C when asked
      c.block(() => {
        c.get(ACC).op('i32.eqz').brIf(0);
        for (let r = 0; r < rows; r++) {
          for (let v = 0; v < V; v++) {
            c.get(acc[r][v])
              .get(cp)
              .i32(r)
              .get(LDC)
              .op('i32.mul')
              .op('i32.add')
              .simd('v128.load', v * 16)
              .simd('f32x4.add')
              .set(acc[r][v]);
          }
        }
      });
      for (let r = 0; r < rows; r++) {
        // address cp + r*ldc, then the V stores at static offsets
        for (let v = 0; v < V; v++) {
          c.get(cp);
          if (r > 0) c.i32(r).get(LDC).op('i32.mul').op('i32.add');
          c.get(acc[r][v]).simd('v128.store', v * 16);
        }
      }
      c.get(cp)
        .i32(NR * 4)
        .op('i32.add')
        .set(cp);
      c.get(bj).get(BSTRIDE).op('i32.add').set(bj);
      c.get(j).i32(1).op('i32.sub').tee(j);
      c.brIf(0);
    });
  });
  return c;
}

/**
 * The peak probe: `iters` iterations of `acc = acc + x*y` (or relaxed_madd) on `nacc` independent v128
 * accumulators held in registers, no memory traffic; 8*nacc flops an iteration. Writes the sum at address 0
 * so nothing is optimised away.
 */
function peakFunction(nacc: number, fma: boolean): Code {
  const c = new Code(['i32']);
  const acc = Array.from({ length: nacc }, () => c.local('v128'));
  const x = c.local('v128');
  const y = c.local('v128');
  c.i32(0).simd('v128.load32_splat', 0).set(x);
  c.i32(0).simd('v128.load32_splat', 4).set(y);
  c.loop(() => {
    for (const a of acc) {
      if (fma) c.get(x).get(y).get(a).simd('f32x4.relaxed_madd').set(a);
      else c.get(a).get(x).get(y).simd('f32x4.mul').simd('f32x4.add').set(a);
    }
    c.get(0).i32(1).op('i32.sub').tee(0).brIf(0);
  });
  c.i32(0);
  c.get(acc[0]);
  for (let i = 1; i < nacc; i++) c.get(acc[i]).simd('f32x4.add');
  c.simd('v128.store', 16);
  return c;
}

export const PEAK_ACCUMULATORS = 12;

/** The module of `gemm1`..`gemm{MR}` and `peak`, over an imported memory. */
export function gemmModuleBytes(s: GemmShape, memory: { pages: number; maxPages?: number; shared?: boolean }): Uint8Array {
  if (s.NR % 4 !== 0 || s.MR < 1 || s.UNROLL < 1) throw new Error(`internal: bad gemm tile ${s.MR}x${s.NR}/${s.UNROLL}`);
  const funcs: FunctionDef[] = [];
  for (let r = 1; r <= s.MR; r++) funcs.push({ name: `gemm${r}`, code: gemmFunction(s, r) });
  funcs.push({ name: 'peak', code: peakFunction(PEAK_ACCUMULATORS, s.fma) });
  return encodeModule(funcs, memory);
}
