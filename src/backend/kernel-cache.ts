/**
 * The compiled-kernel cache of a Backend (and of each kernel worker thread): bounded, least recently used
 * evicted first. A gpu.js kernel costs ≈84 KB of host memory (source, compiled function / wasm module,
 * GL program), one per distinct (source, output size, argument sizes): a program that runs many shapes
 * grew without bound. An evicted kernel is compiled again when its shape comes back.
 *
 * Size: setBackendOptions({ kernelCache }) / TSNN_KERNEL_CACHE (kernels, default 1024, ≈86 MB) or setKernelCacheSize(n). Self-contained
 * (the worker threads embed this source).
 */
import { option } from '../platform/options';

export const DEFAULT_KERNEL_CACHE = 1024;

/** The size new caches get (setKernelCacheSize / setBackendOptions({ kernelCache }) in devices.ts change it). */
export const kernelCacheConfig = { size: option('kernelCache') ?? DEFAULT_KERNEL_CACHE };

export class KernelCache<K> {
  private readonly map = new Map<string, K>();
  evicted = 0;

  constructor(
    private limitValue: number,
    private readonly release: (kernel: K) => void,
  ) {}

  get limit(): number {
    return this.limitValue;
  }

  set limit(n: number) {
    this.limitValue = n;
    this.trim();
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): K | undefined {
    const k = this.map.get(key);
    if (k !== undefined) {
      // Map order is insertion order: re-inserting makes it the most recent
      this.map.delete(key);
      this.map.set(key, k);
    }
    return k;
  }

  set(key: string, kernel: K): void {
    this.map.set(key, kernel);
    this.trim();
  }

  clear(): void {
    for (const k of this.map.values()) this.release(k);
    this.map.clear();
  }

  private trim(): void {
    // never below one: the kernel just added is about to run
    while (this.map.size > Math.max(1, this.limitValue)) {
      const [key, k] = this.map.entries().next().value as [string, K];
      this.map.delete(key);
      this.evicted++;
      this.release(k);
    }
  }
}

/**
 * Frees a kernel of a host backend (cpu, webasm): its results are copies, so destroy() is safe; gpu.js's
 * cpu kernel does not take itself off its GPU's kernel list, so that is done here. Self-contained.
 */
export function releaseHostKernel(gpu: any, shortcut: any): void {
  const inner = shortcut && shortcut.kernel ? shortcut.kernel : shortcut;
  try {
    if (inner && typeof inner.destroy === 'function') inner.destroy();
  } catch (e) {
    // a kernel that cannot be torn down is still dropped from the cache
  }
  const list = gpu && gpu.kernels;
  const i = list ? list.indexOf(inner) : -1;
  if (i >= 0) list.splice(i, 1);
}

/**
 * Frees a GL kernel's program, shaders and upload textures but not its output textures: tensors made by
 * it may still hold those (refcounted; they free them through the kernel, whose context stays set).
 * gpu.js's destroy() would delete every texture the kernel ever created, live results included.
 */
export function releaseGlKernel(gpu: any, shortcut: any): void {
  const k = shortcut && shortcut.kernel ? shortcut.kernel : shortcut;
  const gl = k && k.context;
  if (gl) {
    if (k.program) gl.deleteProgram(k.program);
    if (k.vertShader) gl.deleteShader(k.vertShader);
    if (k.fragShader) gl.deleteShader(k.fragShader);
    if (k.framebuffer) gl.deleteFramebuffer(k.framebuffer);
    // gpu.js points the vertex attributes at a kernel's buffer only when it builds one: the last built
    // kernel's buffer serves every draw until the next build, so it is not deleted (64 bytes)
    if (k.buffer && gl.getParameter(gl.ARRAY_BUFFER_BINDING) !== k.buffer) gl.deleteBuffer(k.buffer);
    for (const arg of k.kernelArguments || []) {
      // textures this kernel uploaded host arrays into; an argument that was another kernel's texture is not ours
      if (arg && typeof arg.destroy === 'function' && !/Texture/.test(String(arg.type))) arg.destroy();
    }
    if (k.texture) k.texture.delete(); // refcounted: only freed if no result holds it
    k.program = k.vertShader = k.fragShader = k.framebuffer = k.buffer = null;
    k.kernelArguments = [];
    k.texture = null;
  }
  const list = gpu && gpu.kernels;
  const i = list ? list.indexOf(k) : -1;
  if (i >= 0) list.splice(i, 1);
}
