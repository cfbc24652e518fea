/**
 * The only module that knows gpu.js. A Backend runs generated kernel sources on one gpu.js mode,
 * caches compiled kernels per (source, output size, argument layout), and owns device buffers.
 *
 * Buffers are immutable once written: an op always produces a new buffer, in-place ops swap a
 * storage's buffer. That keeps saved-for-backward values valid and makes release a refcount matter.
 *
 * Threads (cpu, webasm): gpu.js threads webasm kernels only under its asynchronous contract, and our
 * API is synchronous. So a large kernel (threads x inner loop >= SPLIT_WORK) is split here instead:
 * along the outermost axis of its thread grid into one part per thread; worker_threads each run a
 * part with their own synchronous gpu.js kernel while the calling thread runs the first, then the
 * caller blocks on Atomics.wait until the workers are done (Node allows that on the main thread).
 * Parts write straight into one SharedArrayBuffer output, and inputs move to shared memory once
 * (buffers are immutable), so nothing is copied per call. TSNN_THREADS=1 turns this off.
 */
import type { DeviceName } from './device';
import * as os from 'os';
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'worker_threads';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const gpujs = require('gpu.js');

const GPU_MODE: Record<DeviceName, string> = { cpu: 'cpu', webasm: 'webasm', gpu: 'headlessgl', webgpu: 'webgpu' };

/** What a kernel reads: a device buffer or a host array to upload. */
type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

export class DeviceBuffer {
  refs = 0;
  constructor(
    readonly backend: Backend,
    public handle: Handle | null,
    readonly size: number,
  ) {
    backend.stats.live++;
    backend.stats.allocated++;
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
    const buf = new DeviceBuffer(this, this.execute(spec), spec.outSize);
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
      if (parts) return this.runParts(spec, parts);
    }
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
 * gpu.js's webasm kernel hands results back as nested arrays (rows, and a Float32Array view per cell for
 * Array(n) results): for a 512x128 grid of Array(4) that is 65,536 view objects, a few ms. Its
 * `_shapeOutput(data)` receives the flat result first; on this pinned gpu.js version we keep that flat
 * array and lay the cells out ourselves. Anything else (other backends, a kernel that switched
 * implementation) still goes through the generic nested-array path below.
 */
function flatWasmOutput(kernel: any): void {
  const inner = kernel?.kernel;
  if (inner && inner.constructor?.name === 'WebAssemblyKernel' && typeof inner._shapeOutput === 'function') {
    inner._shapeOutput = (data: Float32Array) => data;
  }
}

/** Copies nested gpu.js output (arrays of rows / Float32Arrays) into one flat Float32Array of `size` cells. */
function flatten(out: any, size: number): Float32Array {
  if (out instanceof Float32Array) return out.length === size ? out : out.slice(0, size);
  const flat = new Float32Array(size);
  let at = 0;
  const walk = (x: any) => {
    if (at >= size) return;
    if (typeof x === 'number') flat[at++] = x;
    else if (x instanceof Float32Array || (ArrayBuffer.isView(x) && !(x instanceof DataView))) {
      const v = x as Float32Array;
      const n = Math.min(v.length, size - at);
      flat.set(n === v.length ? v : v.subarray(0, n), at);
      at += n;
    } else for (const y of x) walk(y);
  };
  walk(out);
  return flat;
}

/**
 * Lays out an Array(4)-per-thread result in row-major order: gpu.js stores component c of thread
 * (x, r) (r = z*Y + y) at ((r*X + x)*4 + c); the tensor wants it at ((r*4 + c)*X + x).
 */
function unpackRows4(out: any, grid: number[], size: number): Float32Array {
  const dst = new Float32Array(size);
  unpackRows4Into(out, grid, dst, 0, size);
  return dst;
}

/** unpackRows4 into dst[offset, offset + size) (one part of a split kernel). Self-contained: workers run its source. */
function unpackRows4Into(out: any, grid: number[], dst: Float32Array, offset: number, size: number): void {
  const X = grid[0];
  const R = (grid[1] ?? 1) * (grid[2] ?? 1);
  const src = out instanceof Float32Array && out.length === X * R * 4 ? out : flatten(out, X * R * 4);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < 4; c++) {
      const row = (r * 4 + c) * X;
      if (row >= size) return;
      const n = Math.min(X, size - row);
      let s = r * X * 4 + c;
      for (let x = 0; x < n; x++, s += 4) dst[offset + row + x] = src[s];
    }
  }
}

/** Copies a (flat or nested) kernel result into dst[offset, offset + size). Self-contained: workers run its source. */
function copyInto(out: any, dst: Float32Array, offset: number, size: number): void {
  const src = out instanceof Float32Array && out.length >= size ? out : flatten(out, size);
  dst.set(src.length === size ? src : src.subarray(0, size), offset);
}

function kernelSettings(output: number[], loopMax: number | undefined, pipeline: boolean) {
  return {
    output,
    pipeline,
    immutable: true,
    precision: 'single',
    tactic: 'precision',
    loopMaxIterations: Math.max(1000, (loopMax ?? 0) + 1),
    strictIntegers: false,
  };
}

// ---- splitting a kernel across threads --------------------------------------------------------------

/** Below this much work (threads x inner-loop iterations) a kernel runs on one thread: a split costs ~0.1 ms. */
export const SPLIT_WORK = 1 << 21;

function threadCount(): number {
  const env = process.env.TSNN_THREADS;
  if (env !== undefined && env !== '') return Math.max(1, Math.floor(Number(env)) || 1);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(cores, 4));
}

/** One part of a split kernel: its source (thread ids offset), its grid, and where its cells go. */
export interface KernelPart {
  source: string;
  grid: number[];
  /** first flat output cell of this part, and how many it writes */
  offset: number;
  size: number;
}

/**
 * Splits a kernel along the outermost axis of its thread grid (z, else y; x for 1-D kernels, in
 * multiples of 4 so SIMD quads stay whole), or returns null when it is too small to be worth it.
 * Sources come from KernelBuilder, which names thread ids only as `this.thread.y/z` in grid kernels
 * and as `const i = this.thread.x;` in flat ones, so offsetting them is a textual substitution.
 */
export function splitKernel(spec: KernelSpec, threads: number): KernelPart[] | null {
  const grid = spec.grid ?? [spec.outSize];
  const cells = grid.reduce((a, b) => a * b, 1);
  if (threads < 2 || cells * Math.max(spec.work ?? spec.loopMax ?? 1, 1) < SPLIT_WORK) return null;
  const comps = spec.rows4 ? 4 : 1;
  let axis = grid.length - 1;
  while (axis > 0 && grid[axis] < 2) axis--;
  const len = grid[axis];
  const quantum = axis === 0 ? 4 : 1;
  const n = Math.min(threads, Math.floor(len / quantum));
  if (n < 2) return null;
  // cells of output per step along the axis
  const stride = grid.slice(0, axis).reduce((a, b) => a * b, 1) * comps;
  const parts: KernelPart[] = [];
  let start = 0;
  for (let p = 0; p < n; p++) {
    const end = p === n - 1 ? len : Math.round(((p + 1) * len) / n / quantum) * quantum;
    if (end <= start) continue;
    const g = [...grid];
    g[axis] = end - start;
    let source = spec.source;
    if (start > 0) {
      if (axis === 0) {
        if (spec.grid || !source.includes('const i = this.thread.x;')) return null;
        source = source.replace('const i = this.thread.x;', `const i = this.thread.x + ${start};`);
      } else {
        const id = axis === 1 ? 'this.thread.y' : 'this.thread.z';
        source = source.split(id).join(`(${id} + ${start})`);
      }
    }
    const offset = start * stride;
    if (offset >= spec.outSize) break;
    parts.push({ source, grid: g, offset, size: Math.min((end - start) * stride, spec.outSize - offset) });
    start = end;
  }
  return parts.length > 1 ? parts : null;
}

function runPart(kernel: any, part: KernelPart, spec: KernelSpec, args: Handle[], dst: Float32Array): void {
  const out = kernel(...args, ...spec.scalars);
  if (spec.rows4) unpackRows4Into(out, part.grid, dst, part.offset, part.size);
  else copyInto(out, dst, part.offset, part.size);
}

/** Moves a host buffer into shared memory (once: buffers are immutable), so workers read it without a copy. */
function shareBuffer(b: DeviceBuffer): Float32Array {
  const h = b.handle;
  if (!(h instanceof Float32Array)) throw new Error('internal: kernel input buffer was already released');
  if (h.buffer instanceof SharedArrayBuffer) return h;
  const shared = new Float32Array(new SharedArrayBuffer(h.length * 4));
  shared.set(h);
  b.handle = shared;
  return shared;
}

const WORKER_SOURCE = `
const { workerData } = require('worker_threads');
const gpujs = require(workerData.gpujs);
const gpu = new gpujs.GPU({ mode: workerData.mode });
const kernels = new Map();
${flatWasmOutput.toString()}
${flatten.toString()}
${unpackRows4Into.toString()}
${copyInto.toString()}
const port = workerData.port;
port.on('message', (m) => {
  const ctrl = new Int32Array(m.ctrl);
  try {
    let k = kernels.get(m.key);
    if (!k) {
      k = gpu.createKernel(m.source, m.settings);
      flatWasmOutput(k);
      kernels.set(m.key, k);
    }
    const out = k(...m.args, ...m.scalars);
    const dst = new Float32Array(m.dst);
    if (m.rows4) unpackRows4Into(out, m.grid, dst, m.offset, m.size);
    else copyInto(out, dst, m.offset, m.size);
    Atomics.store(ctrl, 0, 1);
  } catch (e) {
    port.postMessage(String((e && e.stack) || e));
    Atomics.store(ctrl, 0, 2);
  }
  Atomics.notify(ctrl, 0);
});
`;

interface Job {
  worker: number;
  ctrl: Int32Array;
}

/** Worker threads, each with its own gpu.js; jobs are posted and awaited synchronously (Atomics.wait). */
class WorkerPool {
  private readonly workers: { worker: Worker; port: MessagePort; ctrl: Int32Array }[] = [];
  constructor(private readonly mode: string) {}

  private get(k: number) {
    while (this.workers.length <= k) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { gpujs: require.resolve('gpu.js'), mode: this.mode, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push({ worker, port: port1, ctrl: new Int32Array(new SharedArrayBuffer(4)) });
    }
    return this.workers[k];
  }

  post(k: number, part: KernelPart, spec: KernelSpec, args: Handle[], dst: Float32Array): Job {
    const w = this.get(k);
    Atomics.store(w.ctrl, 0, 0);
    const key = `${part.grid.join('x')}${spec.rows4 ? '*4' : ''}|${args.map((a) => (a as Float32Array).length).join(',')}|${part.source}`;
    w.port.postMessage({
      key,
      source: part.source,
      settings: kernelSettings(part.grid, spec.loopMax, false),
      args,
      scalars: spec.scalars,
      dst: dst.buffer,
      ctrl: w.ctrl.buffer,
      rows4: !!spec.rows4,
      grid: part.grid,
      offset: part.offset,
      size: part.size,
    });
    return { worker: k, ctrl: w.ctrl };
  }

  /** Blocks until the job is done; null, or the worker's error. */
  wait(job: Job): string | null {
    // generous: the first run of a kernel compiles it in the worker
    const deadline = Date.now() + 120_000;
    while (Atomics.load(job.ctrl, 0) === 0) {
      if (Date.now() > deadline) return 'timed out';
      Atomics.wait(job.ctrl, 0, 0, 1000);
    }
    if (Atomics.load(job.ctrl, 0) === 1) return null;
    const msg = receiveMessageOnPort(this.workers[job.worker].port);
    return msg ? String(msg.message) : 'worker failed';
  }

  destroy(): void {
    for (const w of this.workers) void w.worker.terminate();
    this.workers.length = 0;
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
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const gl = require('gl')(1, 1);
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const r = ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER);
    gl.getExtension('STACKGL_destroy_context')?.destroy();
    return String(r);
  } catch {
    return undefined;
  }
}
