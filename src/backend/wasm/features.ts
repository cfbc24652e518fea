/**
 * What this runtime's WebAssembly can do, probed once with WebAssembly.validate on tiny modules.
 * Node 20 (V8 11.3) validates fixed-width SIMD but not relaxed SIMD unless started with
 * `--experimental-wasm-relaxed-simd`; Chrome 114+ and Node 22+ have both.
 */
import { Code, encodeModule } from './emitter';
import { wasmApi } from './runtime';

function validates(body: (c: Code) => void): boolean {
  try {
    const c = new Code(['i32']);
    body(c);
    return wasmApi!.validate(encodeModule([{ name: 'f', code: c }], { pages: 1 }));
  } catch {
    return false;
  }
}

let cached: { simd: boolean; relaxedSimd: boolean } | null = null;

export function wasmFeatures(): { simd: boolean; relaxedSimd: boolean } {
  if (cached) return cached;
  const hasWasm = wasmApi !== null && typeof wasmApi.validate === 'function';
  const simd = hasWasm && validates((c) => c.i32(0).simd('v128.load', 0).i32(0).simd('v128.load', 0).simd('f32x4.add').set(c.local('v128')));
  const relaxedSimd =
    simd &&
    validates((c) =>
      c.i32(0).simd('v128.load', 0).i32(0).simd('v128.load', 0).i32(0).simd('v128.load', 0).simd('f32x4.relaxed_madd').set(c.local('v128')),
    );
  return (cached = { simd, relaxedSimd });
}
