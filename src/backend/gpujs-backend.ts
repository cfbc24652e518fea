/**
 * The only module that knows gpu.js. A Backend runs generated kernel sources on one gpu.js mode,
 * caches compiled kernels per (source, output size, argument layout), and owns device buffers.
 *
 * Buffers are immutable once written: an op always produces a new buffer, in-place ops swap a
 * storage's buffer. That keeps saved-for-backward values valid and makes release a refcount matter.
 *
 * Large kernels on cpu/webasm are split across worker threads (kernel-threads.ts); results are laid out
 * flat by kernel-output.ts.
 */
import type { DeviceName } from './device';
import {
  DeviceLimit,
  checkFits,
  checkKernelFits,
  glLimit,
  hostLimit,
  isWasmMemoryFailure,
  wasmMemoryFailure,
  wasmReservationProblem,
  webasmLimit,
} from './limits';
import { flatWasmOutput, flatten, kernelSettings, unpackRows4 } from './kernel-output';
import { installWasmCodegen } from './wasm-codegen';
import { SplitPolicy } from './split-policy';
import { KernelCache, kernelCacheConfig, releaseGlKernel, releaseHostKernel } from './kernel-cache';
import { KernelPart, runPart, shareBuffer, splitKernel, threadCount } from './kernel-threads';
import { WorkerPool } from './worker-pool';
import { takeKernelFault } from './kernel-faults';
import { TexturePileup, nextTurn } from './gl-pileup';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gpujs = require('gpu.js');
installWasmCodegen(gpujs);

const GPU_MODE: Record<DeviceName, string> = { cpu: 'cpu', webasm: 'webasm', gpu: 'headlessgl', webgpu: 'webgpu' };

/** What a kernel reads: a device buffer or a host array to upload. */
export type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

/**
 * Deletes the GL texture of a buffer that became unreachable without an explicit release (no dispose, no
 * tidy): GPU memory the garbage collector cannot see. The held value never references the buffer, so
 * registering does not keep it alive. Host buffers (cpu, webasm) are not registered at all: their memory is
 * the Float32Array, which the collector frees with the buffer, even inside a synchronous loop, where a
 * registry entry per buffer would itself pile up (~5 KB a step) until the event loop turned.
 */
const unreachableTextures = new FinalizationRegistry<{ stats: BackendStats; texture: { delete(): void } }>((held) => {
  held.stats.live--;
  held.texture.delete();
});

export class DeviceBuffer {
  refs = 0;
  constructor(
    readonly backend: Backend,
    public handle: Handle | null,
    readonly size: number,
  ) {
    backend.stats.live++;
    backend.stats.allocated++;
    if (handle && !(handle instanceof Float32Array)) {
      unreachableTextures.register(this, { stats: backend.stats, texture: handle }, this);
      backend.pileup.made(backend.stats.live);
    }
  }
  retain(): this {
    this.refs++;
    return this;
  }
  release(): void {
    if (--this.refs > 0 || this.handle === null) return;
    this.backend.free(this);
  }
}

export interface KernelSpec {
  /** gpu.js kernel function source: `function(in0, in1, s0) { ... }` */
  source: string;
  outSize: number;
  inputs: DeviceBuffer[];
  scalars: number[];
  /** longest loop in the source (GL backends cap loops at this) */
  loopMax?: number;
  /** gpu.js thread grid [x, y?, z?]; default [outSize], one thread per flat output cell */
  grid?: number[];
  /** threads return Array(4): component c of thread (x, y, z) is flat cell ((z*Y + y)*4 + c)*X + x (cells >= outSize are padding) */
  rows4?: boolean;
  /** estimated inner-loop iterations per thread */
  work?: number;
  /**
   * The grid axis along which this kernel may be cut into parts for threads: its source reads its first
   * thread id on that axis from the constant `this.constants.partBase` (0 for a whole run; KernelBuilder's
   * threadId). Absent: the source names no part base and the kernel always runs whole.
   */
  partAxis?: number;
  /** what the op computes, for the graph tracer; ignored here */
  meta?: unknown;
  /** the op's name, for errors */
  op?: string;
}

/** Observes kernel runs, uploads and host reads (the graph capture in src/graph installs one). */
export interface KernelTracer {
  onRun(spec: KernelSpec, out: DeviceBuffer): void;
  onUpload(buf: DeviceBuffer): void;
  onRead(buf: DeviceBuffer): void;
  /**
   * `buf` (just uploaded) holds fresh draws of the seeded RNG (`draws` numbers); `redraw` draws new
   * contents of the same distribution and size (a replayed graph takes fresh randomness from it).
   */
  onRandom?(buf: DeviceBuffer, redraw: () => Float32Array, draws: number): void;
}
export const tracing: { tracer: KernelTracer | null } = { tracer: null };

export interface BackendStats {
  /**
   * Buffers not yet freed. GL: textures, until released or finalized. Host backends: buffers not released
   * explicitly (dispose, tidy, refcount) — the garbage collector frees the others without telling.
   */
  live: number;
  allocated: number;
  kernelsCompiled: number;
  kernelRuns: number;
}

/** Per-kernel wall time, collected while `profile.on` (bench/profile.ts prints it); host backends only. */
export const profile: { on: boolean; kernels: Map<string, { runs: number; ms: number; outSize: number }> } = { on: false, kernels: new Map() };

export class Backend {
  readonly stats: BackendStats = { live: 0, allocated: 0, kernelsCompiled: 0, kernelRuns: 0 };
  /** GL: warns when textures pile up in a loop that never yields (gl-pileup.ts) */
  readonly pileup = new TexturePileup();
  private readonly gpu: any;
  /** compiled kernels, bounded (kernel-cache.ts) */
  readonly kernels: KernelCache<any>;
  /** true where kernel outputs stay on the device (textures) rather than host arrays */
  readonly resident: boolean;

  constructor(readonly device: DeviceName) {
    this.gpu = new gpujs.GPU({ mode: GPU_MODE[device] });
    this.resident = device === 'gpu';
    const release = this.resident ? releaseGlKernel : releaseHostKernel;
    this.kernels = new KernelCache<any>(kernelCacheConfig.size, (k) => release(this.gpu, k));
  }

  /** The gpu.js kernel class that actually runs here (tells a silent fallback apart). */
  get implementation(): string {
    return this.gpu.Kernel?.name ?? GPU_MODE[this.device];
  }

  /** Whether map-style kernels should run on a row grid (KernelBuilder): webasm, whose SIMD codegen gains vector loads. */
  get prefersRowGrid(): boolean {
    return this.device === 'webasm';
  }

  /** Whether kernels may use a thread grid with Array(4) results (host-memory backends: cpu, webasm). */
  get supportsTiles(): boolean {
    return !this.resident;
  }

  upload(data: Float32Array, op = 'upload'): DeviceBuffer {
    checkFits(op, data.length, this.device, this.limit);
    const buf = new DeviceBuffer(this, data, data.length);
    tracing.tracer?.onUpload(buf);
    return buf;
  }

  /** The largest tensor this device holds (limits.ts). */
  get limit(): DeviceLimit {
    if (!this.limitValue) {
      if (this.device === 'webasm') this.limitValue = webasmLimit();
      else if (this.device === 'gpu') this.limitValue = glLimit(this.gpu.Kernel?.features?.maxTextureSize ?? 4096);
      else this.limitValue = hostLimit();
    }
    return this.limitValue;
  }
  private limitValue: DeviceLimit | null = null;

  run(spec: KernelSpec): DeviceBuffer {
    if (spec.outSize === 0) return this.upload(new Float32Array(0));
    checkKernelFits(
      spec.op ?? 'kernel',
      spec.outSize,
      spec.inputs.map((b) => b.size),
      this.device,
      this.limit,
    );
    const t0 = profile.on ? performance.now() : 0;
    const buf = new DeviceBuffer(this, this.execute(spec), spec.outSize);
    if (profile.on) {
      const entry = profile.kernels.get(spec.source) ?? { runs: 0, ms: 0, outSize: spec.outSize };
      entry.runs++;
      entry.ms += performance.now() - t0;
      profile.kernels.set(spec.source, entry);
    }
    tracing.tracer?.onRun(spec, buf);
    return buf;
  }

  /** Runs a kernel and returns its output handle: a flat Float32Array of outSize cells, or a texture. */
  private execute(spec: KernelSpec): Handle {
    const args = spec.inputs.map((b) => {
      if (b.handle === null) throw new Error('internal: kernel input buffer was already released');
      return b.handle;
    });
    const output = spec.grid ?? [spec.outSize];
    if ((spec.grid || spec.rows4) && !this.supportsTiles) throw new Error(`internal: grid kernels are not supported on '${this.device}'`);
    this.stats.kernelRuns++;
    if (!this.resident && this.threads > 1) {
      const parts = splitKernel(spec, this.threads);
      if (parts) {
        // split or whole, whichever this kernel has been running faster on this machine (split-policy.ts)
        const key = `${output.join('x')}|${spec.source}`;
        const mode = process.env.TSNN_SPLIT === 'always' ? 'split' : this.splitPolicy.choose(key);
        const t0 = performance.now();
        const result = mode === 'split' ? this.runParts(spec, parts) : this.runWhole(spec, output, args);
        this.splitPolicy.record(key, mode, performance.now() - t0);
        return result;
      }
    }
    return this.runWhole(spec, output, args);
  }

  private runWhole(spec: KernelSpec, output: number[], args: Handle[]): Handle {
    const out = this.kernel(spec, output, args, 0)(...args, ...spec.scalars);
    if (this.resident) return out;
    if (spec.rows4) return unpackRows4(out, output, spec.outSize);
    if (out instanceof Float32Array && out.length === spec.outSize) return out;
    return flatten(out, spec.outSize);
  }

  /** The compiled gpu.js kernel of a spec for an output grid and part base (0: whole run), from the cache. */
  private kernel(spec: KernelSpec, output: number[], args: Handle[], partBase: number): any {
    const key = kernelKey(spec, output, args, partBase);
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(
        spec.source,
        kernelSettings(output, spec.loopMax, this.resident, spec.partAxis === undefined ? undefined : partBase),
      );
      flatWasmOutput(kernel);
      this.kernels.set(key, kernel);
      this.stats.kernelsCompiled++;
    }
    return kernel;
  }

  // ---- threads -----------------------------------------------------------------------------------
  /** Threads that run one kernel (TSNN_THREADS, default: the cores here, at most 4); 1 on GL. */
  get threads(): number {
    if (this.resident || this.threadsOff || typeof SharedArrayBuffer === 'undefined') return 1;
    return threadCount();
  }
  private threadsOff = false;
  readonly splitPolicy = new SplitPolicy();
  private pool: WorkerPool | null = null;
  readonly threadStats = { splitRuns: 0 };

  /**
   * Runs the parts of a split kernel: parts 1.. on workers, part 0 here; all write one shared output.
   * Whatever fails (a worker that dies, throws or hangs, or this thread's own part), every posted part is
   * settled before this returns or throws, so no part still writes later; a failed worker is replaced.
   */
  private runParts(spec: KernelSpec, parts: KernelPart[]): Float32Array {
    const dst = new Float32Array(new SharedArrayBuffer(spec.outSize * 4));
    const args = spec.inputs.map((b) => shareBuffer(b));
    const fault = takeKernelFault();
    const pool = (this.pool ??= new WorkerPool(GPU_MODE[this.device], this.kernels.limit));
    const pending = parts.slice(1).map((p, k) => {
      const job = {
        key: kernelKey(spec, p.grid, args, p.base),
        source: spec.source,
        settings: kernelSettings(p.grid, spec.loopMax, false, p.base),
        args,
        scalars: spec.scalars,
        dst,
        rows4: !!spec.rows4,
        grid: p.grid,
        offset: p.offset,
        size: p.size,
      };
      return pool.post(k, job, fault?.where === 'worker' && fault.part === k + 1 ? fault.kind : undefined);
    });
    this.threadStats.splitRuns++;
    const t0 = performance.now();
    let mainError: unknown = null;
    try {
      if (fault?.where === 'main') throw new Error("injected fault in the calling thread's part (test hook)");
      runPart(this.kernel(spec, parts[0].grid, args, parts[0].base), parts[0], spec, args, dst);
    } catch (e) {
      mainError = e;
    }
    const failures = pool.waitAll(pending, performance.now() - t0);
    if (mainError !== null) throw mainError;
    if (failures.length === 0) return dst;
    // a worker that cannot even start will not start next time either: run on this thread from now on
    if (failures.some((f) => f.startup)) this.threadsOff = true;
    const f = failures[0];
    throw new Error(
      `tsnn: worker thread ${f.slot + 1} of the ${this.device} backend ${f.why}, running part ${f.slot + 2} of ${parts.length} of a kernel ` +
        `(grid ${(spec.grid ?? [spec.outSize]).join('x')}); the op failed and ${this.threadsOff ? 'threads are off on this backend from now on' : 'the worker was replaced'} ` +
        '(TSNN_THREADS=1 runs every kernel on the calling thread)',
    );
  }

  /** Synchronous read-back (host copy owned by the caller). */
  read(buf: DeviceBuffer): Float32Array {
    tracing.tracer?.onRead(buf);
    const h = buf.handle;
    if (h === null) throw new Error('tensor data was released (disposed or freed by tidy())');
    if (h instanceof Float32Array) return h;
    const arr = h.toArray();
    return arr instanceof Float32Array ? arr : Float32Array.from(arr.flat ? arr.flat(3) : arr);
  }

  async readAsync(buf: DeviceBuffer): Promise<Float32Array> {
    tracing.tracer?.onRead(buf);
    const h: any = buf.handle;
    if (h && !(h instanceof Float32Array) && typeof h.toArray === 'function') {
      const arr = await h.toArray();
      // headless-gl reads back synchronously, so the await above is only a microtask; a turn of the event
      // loop lets finalizers delete the textures of unreachable tensors (an `await loss.data()` loop stays flat)
      await nextTurn();
      return arr instanceof Float32Array ? arr : Float32Array.from(arr);
    }
    return this.read(buf);
  }

  free(buf: DeviceBuffer): void {
    const h = buf.handle;
    buf.handle = null;
    unreachableTextures.unregister(buf);
    this.stats.live--;
    if (h && !(h instanceof Float32Array)) h.delete();
  }

  destroy(): void {
    this.kernels.clear();
    this.pool?.destroy();
    this.pool = null;
    this.gpu.destroy?.();
  }
}

/**
 * Cache key of a compiled kernel. gpu.js fixes each argument's size (texture dimensions) when it compiles a
 * kernel, so the size is part of the key (a kernel compiled for a 12-element texture reads a 6-element one
 * with the wrong layout), and so is the part base, a compile-time constant.
 */
function kernelKey(spec: KernelSpec, output: number[], args: Handle[], partBase: number): string {
  const sizes = args.map((a, k) => (a instanceof Float32Array ? `a${a.length}` : `t${spec.inputs[k].size}`)).join(',');
  return `${output.join('x')}${spec.rows4 ? '*4' : ''}|${sizes}|${spec.partAxis === undefined ? '' : `@${partBase}`}|${spec.source}`;
}

/** Can this gpu.js mode run here? Probed once per process, by actually running a kernel. */
export function probeDevice(device: DeviceName): { ok: boolean; why?: string; renderer?: string } {
  try {
    if (device === 'webasm' && !gpujs.GPU.isWebAssemblySupported) return { ok: false, why: 'WebAssembly not supported' };
    if (device === 'gpu' && !gpujs.GPU.isHeadlessGLSupported) return { ok: false, why: 'headless-gl (`gl` package) not installed or no display' };
    if (device === 'webgpu') return { ok: false, why: 'webgpu kernels are asynchronous only and no adapter is probed synchronously' };
    const b = new Backend(device);
    const x = b.upload(Float32Array.from([1, 2, 3]));
    const out = b.read(b.run({ source: 'function(in0) { return in0[this.thread.x] * 2; }', outSize: 3, inputs: [x], scalars: [] }));
    if (out[2] !== 6) return { ok: false, why: `self-test returned ${Array.from(out)}` };
    if (b.implementation !== undefined && device !== 'cpu' && /CPUKernel/.test(b.implementation)) {
      return { ok: false, why: 'gpu.js fell back to its cpu kernel' };
    }
    const reservation = device === 'webasm' ? wasmReservationProblem() : null;
    if (reservation) return { ok: false, why: reservation };
    return { ok: true, renderer: device === 'gpu' ? glRenderer() : undefined };
  } catch (e) {
    return { ok: false, why: device === 'webasm' && isWasmMemoryFailure(e) ? wasmMemoryFailure(e) : (e as Error).message };
  }
}

/** The GL renderer string, to tell a real GPU from Mesa's software rasteriser. */
function glRenderer(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gl = require('gl')(1, 1);
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    return String(r);
  } catch {
    return undefined;
  }
}
