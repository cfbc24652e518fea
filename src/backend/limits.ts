/**
 * The largest tensor each device can hold and compute on, checked before anything is allocated so an
 * oversized tensor is a clear error naming the op and the size, never a 78 s allocation, a hang, or a raw
 * engine error (`Invalid typed array length`, `generated module failed validation`).
 *
 * Measured limits (Node 20, gpu.js 2.24):
 * - every device keeps host copies in Float32Arrays: at most the engine's typed-array length (2^32 in
 *   Node 20; `buffer.constants.MAX_LENGTH`), and never more than the machine's physical memory;
 * - webasm: the generated WebAssembly does index arithmetic in f32, exact only up to 2^24: an add over
 *   2^24 + 2 elements returns a wrong value at element 2^24 + 1, a max over the rows of a [4096, 8200]
 *   tensor goes wrong from row 4092; and all of one kernel's inputs and its output share one wasm32
 *   memory of at most 4 GiB;
 * - gpu: one value per texel of a texture at most MAX_TEXTURE_SIZE texels on a side.
 */
import { fmtShape, numelOf, Shape } from '../tensor/shape';
import { hostMemoryBytes, typedArrayMaxLength as platformTypedArrayMax } from '../platform/env';

export interface DeviceLimit {
  /** most elements in one tensor (one buffer, one kernel output) */
  elements: number;
  /** why, for the error message */
  why: string;
  /** most bytes one kernel's inputs and output may take together (webasm's one wasm memory) */
  kernelBytes?: number;
}

/** Longest Float32Array this engine can allocate (platform/env.ts). */
export function typedArrayMaxLength(): number {
  return platformTypedArrayMax();
}

/** Elements of physical memory here (Infinity where the engine does not tell, as in a page). */
function hostMemoryElements(): number {
  try {
    return Math.floor(hostMemoryBytes() / 4);
  } catch {
    return Infinity;
  }
}

/** The host-side limit every device shares: the typed-array length, the machine's memory. */
export function hostLimit(): DeviceLimit {
  const typed = typedArrayMaxLength();
  const mem = hostMemoryElements();
  return mem < typed
    ? { elements: mem, why: `the ${gib(mem * 4)} of memory on this machine` }
    : { elements: typed, why: `the longest Float32Array this JavaScript engine allocates` };
}

/** webasm: f32 index arithmetic (exact to 2^24) and one 4 GiB wasm32 memory per kernel. */
export const WASM_INDEX_LIMIT = 2 ** 24;
export const WASM_MEMORY_BYTES = 65536 * 65536;

export function webasmLimit(): DeviceLimit {
  const host = hostLimit();
  if (host.elements < WASM_INDEX_LIMIT) return host;
  return {
    elements: WASM_INDEX_LIMIT,
    why: `its generated WebAssembly indexes in float32, exact up to 2^24 elements; use device 'cpu' for larger tensors`,
    // gpu.js reserves 16 pages beyond a kernel's data
    kernelBytes: WASM_MEMORY_BYTES - 16 * 65536,
  };
}

export function glLimit(maxTextureSize: number): DeviceLimit {
  const host = hostLimit();
  const texels = maxTextureSize * maxTextureSize;
  if (host.elements <= texels) return host;
  return { elements: texels, why: `one value per texel of a ${maxTextureSize}x${maxTextureSize} texture (MAX_TEXTURE_SIZE)` };
}

function gib(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function sizeOf(shape: Shape | number): string {
  const n = typeof shape === 'number' ? shape : numelOf(shape);
  return `${typeof shape === 'number' ? '' : `shape ${fmtShape(shape)}, `}${n} elements (${gib(n * 4)} as float32)`;
}

/** Throws, naming the op and the size, when a tensor of `shape` is over what `device` can hold. */
export function checkFits(op: string, shape: Shape | number, device: string, limit: DeviceLimit): void {
  const n = typeof shape === 'number' ? shape : numelOf(shape);
  if (n <= limit.elements) return;
  throw new RangeError(
    `${op}: a tensor of ${sizeOf(shape)} is more than device '${device}' can hold: at most ${limit.elements} elements (${limit.why})`,
  );
}

/** Throws when one kernel's inputs and output together are over the device's per-kernel memory. */
export function checkKernelFits(op: string, outSize: number, inputSizes: number[], device: string, limit: DeviceLimit): void {
  checkFits(op, outSize, device, limit);
  if (limit.kernelBytes === undefined) return;
  const bytes = 4 * (outSize + inputSizes.reduce((a, b) => a + b, 0));
  if (bytes <= limit.kernelBytes) return;
  throw new RangeError(
    `${op}: one kernel's ${inputSizes.length} inputs and output take ${gib(bytes)}, more than device '${device}' can map at once (${gib(limit.kernelBytes)}: one wasm32 memory)`,
  );
}

/**
 * WebAssembly memories a model's kernels hold at once (gpu.js gives each compiled kernel its own). Each
 * reserves ~10 GB of address space (V8's guard regions), so under `ulimit -v` the probe's one kernel can
 * pass and a small model still fail a few kernels later (measured: 24 GB of address space holds 2).
 */
export const WASM_MEMORIES_NEEDED = 64;

/** Why webasm cannot reserve the memories it needs here, or null. Reserves them briefly; costs ~10 ms. */
export function wasmReservationProblem(): string | null {
  // gpu.js's smallest kernel memory: 17 pages, maximum 4096 (kernel.js _assembleModule)
  const wasm = (globalThis as any).WebAssembly;
  const held: unknown[] = [];
  try {
    for (let k = 0; k < WASM_MEMORIES_NEEDED; k++) held.push(new wasm.Memory({ initial: 17, maximum: 4096 }));
    return null;
  } catch (e) {
    return wasmMemoryFailure(e, held.length);
  } finally {
    held.length = 0;
  }
}

/** The reason given when reserving WebAssembly memory failed (`could not allocate memory`). */
export function wasmMemoryFailure(e: unknown, reserved?: number): string {
  const count = reserved === undefined ? '' : ` (${reserved} of the ${WASM_MEMORIES_NEEDED} a model needs at once)`;
  return (
    `WebAssembly memory could not be reserved${count}: ${(e as Error).message}. Each WebAssembly memory reserves ~10 GB ` +
    `of address space: is it limited (ulimit -v)?`
  );
}

export function isWasmMemoryFailure(e: unknown): boolean {
  return e instanceof RangeError && /WebAssembly\.Memory|could not allocate memory|Out of memory/i.test(e.message);
}
