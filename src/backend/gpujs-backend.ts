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
import { codegenGpu } from './wasm-codegen';
import { SplitPolicy } from './split-policy';
import { KernelCache, kernelCacheConfig, releaseGlKernel, releaseHostKernel } from './kernel-cache';
import { KernelPart, runPart, shareBuffer, splitKernel, threadCount } from './kernel-threads';
import type { KernelWorkerPool, PendingJob } from './worker-pool';
import { createWorkerPool, threadsUnavailable } from '../platform/threads';
import { option } from '../platform/options';
import { glMode } from '../platform/gl';
import { takeKernelFault } from './kernel-faults';
import { TexturePileup, nextTurn } from './gl-pileup';
import { recycleHostArray } from './host-pool';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gpujs = require('gpu.js');

/** The platform's GL mode (platform/gl.ts: headless-gl in Node, WebGL2 in a page), asked on first use. */
let glModeHere: ReturnType<typeof glMode> | null = null;
function gpuMode(): ReturnType<typeof glMode> {
  return (glModeHere ??= glMode(gpujs));
}

/** The gpu.js mode of each device. */
function modeOf(device: DeviceName): string {
  if (device === 'gpu') return gpuMode().mode ?? 'headlessgl';
  return device;
}

/** What a kernel reads: a device buffer or a host array to upload. */
export type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

/**
 * Deletes the GL texture of a buffer that became unreachable without an explicit release (no dispose, no
 * tidy): GPU memory the garbage collector cannot see. The held value never references the buffer, so
 * registering does not keep it alive. Host buffers (cpu, webasm) are not registered at all: their memory is
 * the Float32Array, which the collector frees with the buffer, even inside a synchronous loop, where a
 * registry entry per buffer would itself pile up (~5 KB a step) until the event loop turned.
 */
const unreachableTextures = new FinalizationRegistry<GlTextures>((held) => {
  held.stats.live--;
  deleteTextures(held);
});

/** The GL textures of one buffer: its values, and the Array(4) view of the same texels once a kernel asked for it. */
interface GlTextures {
  stats: BackendStats;
  texture: { delete(): void };
  quads: { delete(): void } | null;
}

function deleteTextures(t: GlTextures): void {
  t.quads?.delete();
  t.texture.delete();
}

export class DeviceBuffer {
  refs = 0;
  /**
   * GL: the values on the host too, where they are known without a read-back (uploaded from the host, or
   * read back once): buffers are immutable, so this copy never goes stale; a kernel reads the texture.
   */
  host: Float32Array | null = null;
  /** GL: the textures this buffer owns (null on host backends, and on GL until its values are on the GPU) */
  gl: GlTextures | null = null;
  constructor(
    readonly backend: Backend,
    public handle: Handle | null,
    readonly size: number,
  ) {
    backend.stats.live++;
    backend.stats.allocated++;
    if (handle && !(handle instanceof Float32Array)) this.adoptTexture(handle);
  }
  /** Takes ownership of a GL texture holding this buffer's values (freed on release, or by the collector). */
  adoptTexture(texture: { delete(): void }): void {
    this.gl = { stats: this.backend.stats, texture, quads: null };
    this.handle = texture as Handle;
    unreachableTextures.register(this, this.gl, this);
    this.backend.pileup.made(this.backend.stats.live);
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
  /** loop iterations one output cell runs in all, nested loops multiplied (GL: see executeGl) */
  loopTotal?: number;
  /** gpu.js thread grid [x, y?, z?]; default [outSize], one thread per flat output cell */
  grid?: number[];
  /** threads return Array(4): component c of thread (x, y, z) is flat cell ((z*Y + y)*4 + c)*X + x (cells >= outSize are padding) */
  rows4?: boolean;
  /**
   * GL: a 1-D grid of ceil(outSize / 4) threads, each returning Array(4): component c of thread x is flat
   * cell 4x + c. That is how GL stores every tensor (4 values per RGBA texel), so the result texture is the
   * tensor itself, with no repacking; the 4 cells share whatever the thread computed for them (tiled matmul).
   */
  quads?: boolean;
  /**
   * GL: inputs read a texel (4 consecutive flat cells) at a time: `inK[t]` is Array(4), cells 4t..4t+3.
   * true at index k for input k.
   */
  quadInputs?: boolean[];
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
  /**
   * A runner that computes the output itself instead of a gpu.js kernel (a direct lowering, src/backend/wasm:
   * host backends only): gets the input handles, returns the flat output. `source` then only names it.
   */
  native?: (inputs: Float32Array[]) => Float32Array;
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
  /** GL: host arrays uploaded to textures (once per buffer) */
  uploads: number;
  /** GL: textures read back to the host (once per buffer) */
  readbacks: number;
  /**
   * Buffers not yet freed. GL: textures, until released or finalized. Host backends: buffers not released
   * explicitly (dispose, tidy, refcount) — the garbage collector frees the others without telling.
   */
  live: number;
  allocated: number;
  kernelsCompiled: number;
  kernelRuns: number;
}

/** Per-kernel wall time, collected while `profile.on` (bench/profile.ts, bench/gl-profile.ts print it); on GL each kernel is waited for. */
export const profile: { on: boolean; kernels: Map<string, { runs: number; ms: number; outSize: number }> } = { on: false, kernels: new Map() };

export class Backend {
  readonly stats: BackendStats = { uploads: 0, readbacks: 0, live: 0, allocated: 0, kernelsCompiled: 0, kernelRuns: 0 };
  /** GL: warns when textures pile up in a loop that never yields (gl-pileup.ts) */
  readonly pileup = new TexturePileup();
  private readonly gpu: any;
  /** compiled kernels, bounded (kernel-cache.ts) */
  readonly kernels: KernelCache<any>;
  /** true where kernel outputs stay on the device (textures) rather than host arrays */
  readonly resident: boolean;

  constructor(readonly device: DeviceName) {
    this.gpu = codegenGpu(gpujs, modeOf(device));
    this.resident = device === 'gpu';
    const release = this.resident ? releaseGlKernel : releaseHostKernel;
    this.kernels = new KernelCache<any>(kernelCacheConfig.size, (k) => release(this.gpu, k));
  }

  /** The GL context kernels run on (gpu: set by the first kernel compiled), else null. */
  get glContext(): unknown {
    return this.resident ? (this.gpu.context ?? null) : null;
  }

  /** The gpu.js kernel class that actually runs here (tells a silent fallback apart). */
  get implementation(): string {
    return this.gpu.Kernel?.name ?? modeOf(this.device);
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
      // GL draws are queued: wait for this one so its time is its own
      if (this.resident) this.gpu.context?.finish();
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
    if (this.resident) return this.executeGl(spec);
    const args = spec.inputs.map((b) => {
      if (b.handle === null) throw new Error('internal: kernel input buffer was already released');
      return b.handle;
    });
    if (spec.native) {
      if (this.resident) throw new Error(`internal: a direct kernel cannot run on '${this.device}'`);
      this.stats.kernelRuns++;
      return spec.native(args as Float32Array[]);
    }
    const output = spec.grid ?? [spec.outSize];
    if (spec.quads || spec.quadInputs) throw new Error(`internal: quad kernels run on GL only, not on '${this.device}'`);
    this.stats.kernelRuns++;
    if (this.threads > 1) {
      const parts = splitKernel(spec, this.threads);
      if (parts) {
        // split or whole, whichever this kernel has been running faster on this machine (split-policy.ts)
        const key = `${output.join('x')}|${spec.source}`;
        const mode = option('split') === 'always' ? 'split' : this.splitPolicy.choose(key);
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
    if (spec.rows4) return unpackRows4(out, output, spec.outSize);
    if (out instanceof Float32Array && out.length === spec.outSize) return out;
    return flatten(out, spec.outSize);
  }

  // ---- GL ----------------------------------------------------------------------------------------
  /**
   * GL: every tensor is one texture, 4 flat cells per RGBA texel (gpu.js's memory-optimized float layout),
   * and stays on the GPU between kernels. A host array is uploaded once, the first time a kernel reads it
   * (its host copy is kept: reading it back is free); results are read back only by `read` (data(), item()).
   * Kernels run in pipeline mode: the output is a new texture, never a host array.
   */
  private executeGl(spec: KernelSpec): Handle {
    if (spec.grid || spec.rows4) throw new Error(`internal: grid kernels are not supported on '${this.device}'`);
    const args = spec.inputs.map((b, k) => this.glArgument(b, !!spec.quadInputs?.[k]));
    this.stats.kernelRuns++;
    if (!spec.quads && (spec.loopTotal ?? 0) * 4 <= GL_FRAGMENT_LOOPS) return this.kernel(spec, [spec.outSize], args, 0)(...args, ...spec.scalars);
    if (!spec.quads) {
      // a fragment of a 4-per-texel kernel runs 4 cells, and ANGLE stops a fragment's loops after ~65,535
      // iterations in all (silently: a partial sum): a long-looping kernel renders one cell per texel, then
      // an identity kernel packs that into the 4-per-texel layout every tensor has
      const wide = this.kernel({ ...spec, quads: undefined }, [spec.outSize], args, 0, false)(...args, ...spec.scalars);
      const copy = { source: PACK_SOURCE, outSize: spec.outSize, inputs: [], scalars: [] };
      const packed = this.kernel(copy, [spec.outSize], [wide], 0)(wide);
      wide.delete();
      return packed;
    }
    // one thread per texel returning its 4 cells: the texels of the memory-optimized layout of outSize cells
    const out = this.kernel(spec, [Math.ceil(spec.outSize / 4)], args, 0)(...args, ...spec.scalars);
    return asFlatTexture(out, spec.outSize);
  }

  /** What a GL kernel is handed for input `b`: its texture (uploaded now if it is still a host array), or the Array(4) view of it. */
  private glArgument(b: DeviceBuffer, quads: boolean): Handle {
    if (b.handle === null) throw new Error('internal: kernel input buffer was already released');
    if (b.handle instanceof Float32Array) {
      const host = b.handle;
      // the identity kernel: gpu.js uploads the array (4 values per texel) and renders the same layout
      const upload = { source: UPLOAD_SOURCE, outSize: host.length, inputs: [], scalars: [] };
      b.adoptTexture(this.kernel(upload, [host.length], [host], 0)(host));
      b.host = host;
      this.stats.uploads++;
    }
    if (!quads) return b.handle!;
    const gl = b.gl!;
    return (gl.quads ??= asQuadTexture(gl.texture, b.size)) as Handle;
  }

  /** The compiled gpu.js kernel of a spec for an output grid and part base (0: whole run), from the cache. */
  private kernel(spec: KernelSpec, output: number[], args: Handle[], partBase: number, flatOutput = !spec.quads): any {
    const key = `${flatOutput ? '' : 'w'}${kernelKey(spec, output, args, partBase)}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(
        spec.source,
        kernelSettings(output, spec.loopMax, this.resident, spec.partAxis === undefined ? undefined : partBase, flatOutput),
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
    if (this.resident || this.threadsOff || threadsUnavailable() !== null) return 1;
    return threadCount();
  }
  private threadsOff = false;
  readonly splitPolicy = new SplitPolicy();
  private pool: KernelWorkerPool | null = null;
  /** split runs, and parts of them that worker threads ran (the rest ran on the calling thread) */
  readonly threadStats = { splitRuns: 0, workerParts: 0 };

  /**
   * Runs the parts of a split kernel: parts 1.. on workers, part 0 here; all write one shared output.
   * Whatever fails (a worker that dies, throws or hangs, or this thread's own part), every posted part is
   * settled before this returns or throws, so no part still writes later; a failed worker is replaced.
   */
  private runParts(spec: KernelSpec, parts: KernelPart[]): Float32Array {
    const dst = new Float32Array(new SharedArrayBuffer(spec.outSize * 4));
    const args = spec.inputs.map((b) => shareBuffer(b));
    const fault = takeKernelFault();
    const pool = (this.pool ??= createWorkerPool(modeOf(this.device), this.kernels.limit));
    const posted = parts.slice(1).map((p, k) => {
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
    const pending = posted.filter((j): j is PendingJob => j !== null);
    this.threadStats.splitRuns++;
    this.threadStats.workerParts += pending.length;
    const t0 = performance.now();
    let mainError: unknown = null;
    try {
      if (fault?.where === 'main') throw new Error("injected fault in the calling thread's part (test hook)");
      runPart(this.kernel(spec, parts[0].grid, args, parts[0].base), parts[0], spec, args, dst);
      // parts no worker could take yet (Web Workers still starting) run here too
      posted.forEach((j, k) => j === null && runPart(this.kernel(spec, parts[k + 1].grid, args, parts[k + 1].base), parts[k + 1], spec, args, dst));
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

  /** Synchronous read-back. The array is shared (the buffer's host copy): callers copy before changing it. */
  read(buf: DeviceBuffer): Float32Array {
    tracing.tracer?.onRead(buf);
    const h = buf.handle;
    if (h === null) throw new Error('tensor data was released (disposed or freed by tidy())');
    if (h instanceof Float32Array) return h;
    if (buf.host) return buf.host;
    this.stats.readbacks++;
    const arr = h.toArray();
    return (buf.host = arr instanceof Float32Array ? arr : Float32Array.from(arr.flat ? arr.flat(3) : arr));
  }

  async readAsync(buf: DeviceBuffer): Promise<Float32Array> {
    tracing.tracer?.onRead(buf);
    const h: any = buf.handle;
    if (h && !(h instanceof Float32Array) && !buf.host && typeof h.toArray === 'function') {
      this.stats.readbacks++;
      const arr = await h.toArray();
      // headless-gl reads back synchronously, so the await above is only a microtask; a turn of the event
      // loop lets finalizers delete the textures of unreachable tensors (an `await loss.data()` loop stays flat)
      await nextTurn();
      return (buf.host = arr instanceof Float32Array ? arr : Float32Array.from(arr));
    }
    return this.read(buf);
  }

  /** The buffer's values where they are on the host without a read-back (host backends; GL: uploaded or read before), else null. */
  hostValues(buf: DeviceBuffer): Float32Array | null {
    return buf.handle instanceof Float32Array ? buf.handle : buf.handle === null ? null : buf.host;
  }

  free(buf: DeviceBuffer): void {
    // a direct kernel's output goes back to its pool (host-pool.ts ignores every other array)
    if (buf.handle instanceof Float32Array) recycleHostArray(buf.handle);
    buf.handle = null;
    buf.host = null;
    this.stats.live--;
    if (buf.gl) {
      unreachableTextures.unregister(buf);
      deleteTextures(buf.gl);
      buf.gl = null;
    }
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
  const sizes = args
    .map((a, k) =>
      a instanceof Float32Array ? `a${a.length}` : `${spec.quadInputs?.[k] ? 'q' : 't'}${spec.inputs[k]?.size ?? (a as any).output?.[0]}`,
    )
    .join(',');
  return `${output.join('x')}${spec.rows4 ? '*4' : spec.quads ? '/4' : ''}|${sizes}|${spec.partAxis === undefined ? '' : `@${partBase}`}|${spec.source}`;
}

/** The GL upload kernel: renders its input array into a texture of the same layout. */
const UPLOAD_SOURCE = 'function(a) { return a[this.thread.x]; }';
/** The GL pack kernel: a one-cell-per-texel texture into the 4-per-texel layout (the output decides). */
const PACK_SOURCE = 'function(t) { return t[this.thread.x]; }';
/** Loop iterations ANGLE lets one fragment run (it stops at ~65,535 in all), with a margin. */
const GL_FRAGMENT_LOOPS = 60000;

/**
 * gpu.js's texture classes: a kernel's result texture and the reinterpretations below must be instances of
 * the very classes gpu.js makes (it tells argument types apart by constructor).
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { GLTextureMemoryOptimized } = require('gpu.js/src/backend/gl/texture/memory-optimized');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { GLTextureArray4Float } = require('gpu.js/src/backend/gl/texture/array-4-float');

/**
 * The result of a quads kernel (an Array(4) texture of ceil(size/4) texels) as the memory-optimized float
 * texture of `size` cells it is bit for bit: texel t holds cells 4t..4t+3 in r, g, b, a, and both layouts
 * size the texture as the closest square of ceil(size/4) texels. Shares the GL texture (reference-counted).
 */
function asFlatTexture(quads: any, size: number): Handle {
  const flat = new GLTextureMemoryOptimized({ ...quads, texture: quads.texture, output: [size], dimensions: [size, 1, 1] });
  quads.delete();
  return flat;
}

/** A second view of a flat texture: Array(4) per texel (kernels read 4 consecutive cells with one fetch). */
function asQuadTexture(flat: any, size: number): { delete(): void } {
  const n = Math.ceil(size / 4);
  return new GLTextureArray4Float({ ...flat, texture: flat.texture, output: [n], dimensions: [n, 1, 1] });
}

/** Can this gpu.js mode run here? Probed once per process, by actually running a kernel. */
export function probeDevice(device: DeviceName): { ok: boolean; why?: string; renderer?: string } {
  try {
    if (device === 'webasm' && !gpujs.GPU.isWebAssemblySupported) return { ok: false, why: 'WebAssembly not supported' };
    const gl = device === 'gpu' ? gpuMode() : null;
    if (gl && gl.mode === null) return { ok: false, why: gl.why };
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
    return { ok: true, renderer: device === 'gpu' ? glRenderer(b.glContext) : undefined };
  } catch (e) {
    return { ok: false, why: device === 'webasm' && isWasmMemoryFailure(e) ? wasmMemoryFailure(e) : (e as Error).message };
  }
}

/**
 * The GL renderer of the context the kernels run on (WEBGL_debug_renderer_info where the context has it,
 * else RENDERER), to tell a real GPU from a software rasteriser (Mesa llvmpipe, SwiftShader).
 */
function glRenderer(gl: any): string | undefined {
  try {
    if (!gl) return undefined;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    return r === null || r === undefined ? undefined : String(r);
  } catch {
    return undefined;
  }
}
