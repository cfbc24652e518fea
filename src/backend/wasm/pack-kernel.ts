/**
 * Packing in WebAssembly: a 2-D strided copy of 32-bit words inside the memory, which packs a matmul
 * operand's panels (pack.ts's layout) once its rows were copied in with a memcpy. Bits are copied as
 * they are (i32 loads and stores). Per element a load and a store with no bounds check or f64 round trip,
 * where the JavaScript packer pays both (measured: see bench/README.md, "Direct matmul overheads").
 */
import { Code, encodeModule } from './emitter';

/**
 * params (bytes): src, dst, outer, inner, srcOuter, srcInner, dstOuter, dstInner:
 * for o < outer, i < inner: dst[o*dstOuter + i*dstInner] = src[o*srcOuter + i*srcInner] (4 bytes each)
 */
function gatherFunction(): Code {
  const c = new Code(['i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32', 'i32']);
  const [SRC, DST, OUTER, INNER, SO, SI, DO, DI] = [0, 1, 2, 3, 4, 5, 6, 7];
  const s = c.local('i32');
  const d = c.local('i32');
  const i = c.local('i32');
  c.block(() => {
    c.get(OUTER).op('i32.eqz').brIf(0);
    c.get(INNER).op('i32.eqz').brIf(0);
    c.loop(() => {
      c.get(SRC).set(s);
      c.get(DST).set(d);
      c.get(INNER).set(i);
      c.loop(() => {
        c.get(d).get(s).i32Load(0).i32Store(0);
        c.get(s).get(SI).op('i32.add').set(s);
        c.get(d).get(DI).op('i32.add').set(d);
        c.get(i).i32(1).op('i32.sub').tee(i).brIf(0);
      });
      c.get(SRC).get(SO).op('i32.add').set(SRC);
      c.get(DST).get(DO).op('i32.add').set(DST);
      c.get(OUTER).i32(1).op('i32.sub').tee(OUTER).brIf(0);
    });
  });
  return c;
}

/** The module of `gather` (params: see gatherFunction), over an imported memory. */
export function packModuleBytes(): Uint8Array {
  return encodeModule([{ name: 'gather', code: gatherFunction() }], { pages: 1 });
}
