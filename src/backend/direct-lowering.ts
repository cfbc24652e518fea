/**
 * Ops lowered straight to a backend's machine instead of to a gpu.js kernel source: where such a lowering
 * exists for this device and is switched on, the op gets a KernelSpec with a `native` runner here, else
 * null and it builds its gpu.js kernel as usual. Today: matmul on `webasm` (src/backend/wasm/).
 */
import type { DeviceName } from './device';
import type { KernelSpec } from './buffer';
import type { StridedRef } from './kernel-builder';
import { wasmMatmulAvailable, wasmMatmulSpec, DirectMatmulShape, RowBias, ColBias } from './wasm/matmul-lowering';

export type { RowBias } from './wasm/matmul-lowering';

/**
 * `rowBias`: out[z, m, n] += bias[(z % groups) * M + m] (a convolution's bias); `colBias`: out[..., n] +=
 * bias[n] (nn.Linear's); both after the product, rounded to f32 as the separate add.
 */
export function directMatmul(
  device: DeviceName,
  a: StridedRef,
  b: StridedRef,
  s: DirectMatmulShape,
  rowBias?: RowBias,
  colBias?: ColBias,
): KernelSpec | null {
  if (device !== 'webasm' || !wasmMatmulAvailable()) return null;
  return wasmMatmulSpec(a, b, s, rowBias, colBias);
}
