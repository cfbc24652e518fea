/**
 * The only module that knows gpu.js. A Backend runs generated kernel sources on one gpu.js mode,
 * caches compiled kernels per (source, output size, argument layout), and owns device buffers.
 *
 * Buffers are immutable once written: an op always produces a new buffer, in-place ops swap a
 * storage's buffer. That keeps saved-for-backward values valid and makes release a refcount matter.
 */
import type { DeviceName } from './device';

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
    // gpu.js fixes each argument's size (texture dimensions) when it compiles a kernel, so the size is part of the key:
    // a kernel compiled for a 12-element texture reads a 6-element one with the wrong layout
    const key = `${output.join('x')}${spec.rows4 ? '*4' : ''}|${args.map((a, k) => (a instanceof Float32Array ? `a${a.length}` : `t${spec.inputs[k].size}`)).join(',')}|${spec.source}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(spec.source, {
        output,
        pipeline: this.resident,
        immutable: true,
        precision: 'single',
        tactic: 'precision',
        loopMaxIterations: Math.max(1000, (spec.loopMax ?? 0) + 1),
        strictIntegers: false,
      });
      flatWasmOutput(kernel);
      this.kernels.set(key, kernel);
      this.stats.kernelsCompiled++;
    }
    this.stats.kernelRuns++;
    const out = kernel(...args, ...spec.scalars);
    if (this.resident) return out;
    if (spec.rows4) return unpackRows4(out, output, spec.outSize);
    if (out instanceof Float32Array && out.length === spec.outSize) return out;
    return flatten(out, spec.outSize);
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
  const X = grid[0];
  const R = (grid[1] ?? 1) * (grid[2] ?? 1);
  const src = out instanceof Float32Array && out.length === X * R * 4 ? out : flatten(out, X * R * 4);
  const dst = new Float32Array(size);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < 4; c++) {
      const row = (r * 4 + c) * X;
      if (row >= size) return dst;
      let s = r * X * 4 + c;
      for (let x = 0; x < X; x++, s += 4) dst[row + x] = src[s];
    }
  }
  return dst;
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
