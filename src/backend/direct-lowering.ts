/**
 * Ops lowered straight to a backend's machine instead of to a gpu.js kernel source: where such a lowering
 * exists for this device and is switched on, the op gets a KernelSpec with a `native` runner here, else
 * null and it builds its gpu.js kernel as usual. Today: matmul and conv2d on `webasm`
 * (src/backend/wasm/).
 */
import type { DeviceName } from './device';
import type { KernelSpec } from './buffer';
import type { StridedRef } from './kernel-builder';
import { wasmMatmulAvailable, wasmMatmulSpec, DirectMatmulShape, RowBias, ColBias } from './wasm/matmul-lowering';
import { ConvShape, wasmConvAvailable, wasmConvForwardSpec, wasmConvGradInputSpec, wasmConvGradWeightSpec } from './wasm/conv-lowering';

export type { RowBias } from './wasm/matmul-lowering';
export type { ConvShape } from './wasm/conv-lowering';

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

/**
 * conv2d on `webasm` as implicit GEMM (src/backend/wasm/conv-lowering.ts): whether it is available now,
 * and the spec of each pass. Callers check `directConvAvailable` first.
 */
export function directConvAvailable(device: DeviceName): boolean {
  return device === 'webasm' && wasmConvAvailable();
}

export function directConv(pass: 'forward', s: ConvShape, a: StridedRef, b: StridedRef, bias: StridedRef | null): KernelSpec;
export function directConv(pass: 'gradInput' | 'gradWeight', s: ConvShape, a: StridedRef, b: StridedRef): KernelSpec;
/** forward (x, w, bias), gradInput (gy, w), gradWeight (gy, x) */
export function directConv(
  pass: 'forward' | 'gradInput' | 'gradWeight',
  s: ConvShape,
  a: StridedRef,
  b: StridedRef,
  bias: StridedRef | null = null,
): KernelSpec {
  if (pass === 'forward') return wasmConvForwardSpec(s, a, b, bias);
  return pass === 'gradInput' ? wasmConvGradInputSpec(s, a, b) : wasmConvGradWeightSpec(s, a, b);
}
