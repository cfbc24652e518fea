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
import { flatWasmOutput, flatten, kernelSettings, unpackRows4 } from './kernel-output';
import { installWasmCodegen } from './wasm-codegen';
import { SplitPolicy } from './split-policy';
import { KernelPart, WorkerPool, runPart, shareBuffer, splitKernel, threadCount } from './kernel-threads';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const gpujs = require('gpu.js');
installWasmCodegen(gpujs);

const GPU_MODE: Record<DeviceName, string> = { cpu: 'cpu', webasm: 'webasm', gpu: 'headlessgl', webgpu: 'webgpu' };

/** What a kernel reads: a device buffer or a host array to upload. */
export type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

/**
 * Reclaims buffers that became unreachable without an explicit release (no dispose, no tidy). The held
 * value never references the buffer or its host array, so registering does not keep memory alive: on host
 * backends (cpu, webasm) the garbage collector frees the Float32Array with the buffer at once, even in a
 * synchronous loop where this callback never gets to run; the callback only updates the count and, on
 * GL, deletes the texture (GPU memory the collector cannot see).
 */
const unreachable = new FinalizationRegistry<{ stats: BackendStats; texture: { delete(): void } | null }>((held) => {
  held.stats.live--;
  held.texture?.delete();
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
    const texture = handle && !(handle instanceof Float32Array) ? (handle as { delete(): void }) : null;
    unreachable.register(this, { stats: backend.stats, texture }, this);
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
  /** what the op computes, for the graph tracer; ignored here */
  meta?: unknown;
}

/** Observes kernel runs, uploads and host reads (the graph capture in src/graph installs one). */
export interface KernelTracer {
  onRun(spec: KernelSpec, out: DeviceBuffer): void;
  onUpload(buf: DeviceBuffer): void;
  onRead(buf: DeviceBuffer): void;
}
export const tracing: { tracer: KernelTracer | null } = { tracer: null };

export interface BackendStats {
  live: number;
  allocated: number;
  kernelsCompiled: number;
  kernelRuns: number;
}

/** Per-kernel wall time, collected while `profile.on` (bench/profile.ts prints it); host backends only. */
export const profile: { on: boolean; kernels: Map<string, { runs: number; ms: number; outSize: number }> } = { on: false, kernels: new Map() };

export class Backend {
  readonly stats: BackendStats = { live: 0, allocated: 0, kernelsCompiled: 0, kernelRuns: 0 };
  private readonly gpu: any;
  private readonly kernels = new Map<string, any>();
  /** true where kernel outputs stay on the device (textures) rather than host arrays */
  readonly resident: boolean;

  constructor(readonly device: DeviceName) {
    this.gpu = new gpujs.GPU({ mode: GPU_MODE[device] });
    this.resident = device === 'gpu';
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

  upload(data: Float32Array): DeviceBuffer {
    const buf = new DeviceBuffer(this, data, data.length);
    tracing.tracer?.onUpload(buf);
    return buf;
  }

  run(spec: KernelSpec): DeviceBuffer {
    if (spec.outSize === 0) return this.upload(new Float32Array(0));
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
    const out = this.kernel(spec.source, output, spec, args)(...args, ...spec.scalars);
    if (this.resident) return out;
    if (spec.rows4) return unpackRows4(out, output, spec.outSize);
    if (out instanceof Float32Array && out.length === spec.outSize) return out;
    return flatten(out, spec.outSize);
  }

  /** The compiled gpu.js kernel for a source and output grid, from the cache. */
  private kernel(source: string, output: number[], spec: KernelSpec, args: Handle[]): any {
    // gpu.js fixes each argument's size (texture dimensions) when it compiles a kernel, so the size is part of the key:
    // a kernel compiled for a 12-element texture reads a 6-element one with the wrong layout
    const key = `${output.join('x')}${spec.rows4 ? '*4' : ''}|${args.map((a, k) => (a instanceof Float32Array ? `a${a.length}` : `t${spec.inputs[k].size}`)).join(',')}|${source}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(source, kernelSettings(output, spec.loopMax, this.resident));
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

  /** Runs the parts of a split kernel: parts 1.. on workers, part 0 here; all write one shared output. */
  private runParts(spec: KernelSpec, parts: KernelPart[]): Float32Array {
    const dst = new Float32Array(new SharedArrayBuffer(spec.outSize * 4));
    const args = spec.inputs.map((b) => shareBuffer(b));
    this.pool ??= new WorkerPool(GPU_MODE[this.device]);
    const pending = parts.slice(1).map((p, k) => this.pool!.post(k, p, spec, args, dst));
    this.threadStats.splitRuns++;
    runPart(this.kernel(parts[0].source, parts[0].grid, spec, args), parts[0], spec, args, dst);
    pending.forEach((job, k) => {
      const err = this.pool!.wait(job);
      if (err === null) return;
      // a worker failed (or timed out): finish its part here and stop threading on this backend
      if (!this.threadsOff) console.warn(`tsnn: a ${this.device} worker thread failed, running single-threaded from now on: ${err.split('\n')[0]}`);
      this.threadsOff = true;
      runPart(this.kernel(parts[k + 1].source, parts[k + 1].grid, spec, args), parts[k + 1], spec, args, dst);
    });
    return dst;
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
      return arr instanceof Float32Array ? arr : Float32Array.from(arr);
    }
    return this.read(buf);
  }

  free(buf: DeviceBuffer): void {
    const h = buf.handle;
    buf.handle = null;
    unreachable.unregister(buf);
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
    return { ok: true, renderer: device === 'gpu' ? glRenderer() : undefined };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
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
