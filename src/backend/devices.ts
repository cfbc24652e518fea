/** Which devices work here, which one 'auto' means, and the one Backend per device. */
import { Backend, probeDevice } from './gpujs-backend';
import { DEVICE_NAMES, DeviceName, DeviceSpec, isDeviceName } from './device';
import { DEFAULT_KERNEL_CACHE, kernelCacheConfig } from './kernel-cache';
import { warnOnce } from '../util/warn-once';
import { onOptionsChange, option } from '../platform/options';

const backends = new Map<DeviceName, Backend>();
const probes = new Map<DeviceName, ReturnType<typeof probeDevice>>();
let defaultDevice: DeviceName | null = null;

export function probe(device: DeviceName) {
  let p = probes.get(device);
  if (!p) probes.set(device, (p = probeDevice(device)));
  return p;
}

/**
 * Software GL (Mesa llvmpipe, SwiftShader) is slower than webasm's SIMD: rank it below. headless-gl 8
 * runs on ANGLE and reports just 'ANGLE' (no WEBGL_debug_renderer_info), which does not tell a GPU
 * from llvmpipe; an uninformative renderer counts as software too (measured here under xvfb: a 512
 * matmul takes 1.5 s on it against 0.05 s on webasm). TSNN_DEVICE=gpu picks it explicitly.
 */
function isSoftwareRenderer(renderer: string | undefined): boolean {
  return !renderer || /^angle$/i.test(renderer.trim()) || /llvmpipe|softpipe|swiftshader|software/i.test(renderer);
}

/** The best working device: a real GPU through headless-gl, else webasm, else software GL, else cpu. */
export function autoDevice(): DeviceName {
  const forced = option('device');
  if (forced && forced !== 'auto') return resolveDevice(forced);
  const gl = probe('gpu');
  if (gl.ok && !isSoftwareRenderer(gl.renderer)) return 'gpu';
  const wasm = probe('webasm');
  if (wasm.ok) return 'webasm';
  const fallback = gl.ok ? 'gpu' : 'cpu';
  // webasm is the usual choice: say why it was passed over (deviceReport() has the same reason)
  if ((globalThis as any).WebAssembly) warnOnce(`device 'webasm' is not available here, 'auto' uses '${fallback}': ${wasm.why}`);
  return fallback;
}

export function resolveDevice(spec: DeviceSpec | undefined): DeviceName {
  if (spec === undefined) return getDefaultDevice();
  if (spec === 'auto') return autoDevice();
  if (!isDeviceName(spec)) {
    throw new Error(`unknown device '${String(spec)}': expected one of ${[...DEVICE_NAMES, 'auto'].map((d) => `'${d}'`).join(', ')}`);
  }
  const p = probe(spec);
  if (!p.ok) throw new Error(`device '${spec}' is not available here: ${p.why}`);
  return spec;
}

export function getDefaultDevice(): DeviceName {
  if (defaultDevice === null) defaultDevice = autoDevice();
  return defaultDevice;
}

export function setDefaultDevice(spec: DeviceSpec): DeviceName {
  defaultDevice = resolveDevice(spec);
  return defaultDevice;
}

/** Bounds every device's compiled-kernel cache to `n` kernels (kernel-cache.ts; default TSNN_KERNEL_CACHE or 1024). */
export function setKernelCacheSize(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setKernelCacheSize: expected a positive integer number of kernels, got ${String(n)}`);
  kernelCacheConfig.size = n;
  for (const b of backends.values()) b.kernels.limit = n;
}

// setBackendOptions({ kernelCache }) resizes the caches like setKernelCacheSize; ({ device }) changes what the default resolves to
onOptionsChange((changed) => {
  if (changed.includes('kernelCache')) setKernelCacheSize(option('kernelCache') ?? DEFAULT_KERNEL_CACHE);
  if (changed.includes('device')) defaultDevice = null;
});

export function backendFor(device: DeviceName): Backend {
  let b = backends.get(device);
  if (!b) backends.set(device, (b = new Backend(device)));
  return b;
}

/** What each device does here, for `tsnn` diagnostics, the README and test headers. */
export function deviceReport(): { device: DeviceName; ok: boolean; why?: string; renderer?: string }[] {
  return DEVICE_NAMES.map((device) => ({ device, ...probe(device) }));
}
