/** Shared by the direct-webasm tests (matmul, linear epilogue, conv): whether the path exists here, and a switch. */
import { deviceReport } from '../../src';
import { wasmMatmulConfig } from '../../src/backend/wasm/matmul-lowering';
import { wasmFeatures } from '../../src/backend/wasm/features';

/** The direct kernels run here: webasm works and has WebAssembly SIMD. */
export const directAvailable = deviceReport().some((d) => d.device === 'webasm' && d.ok) && wasmFeatures().simd;

/** Runs f with the direct path on (true) or the gpu.js kernel (false). */
export function withDirect<T>(on: boolean, f: () => T): T {
  const was = wasmMatmulConfig.enabled;
  wasmMatmulConfig.enabled = on;
  try {
    return f();
  } finally {
    wasmMatmulConfig.enabled = was;
  }
}
