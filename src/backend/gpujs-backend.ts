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
}

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

  upload(data: Float32Array): DeviceBuffer {
    return new DeviceBuffer(this, data, data.length);
  }

  run(spec: KernelSpec): DeviceBuffer {
    if (spec.outSize === 0) return this.upload(new Float32Array(0));
    const args = spec.inputs.map((b) => {
      if (b.handle === null) throw new Error('internal: kernel input buffer was already released');
      return b.handle;
    });
    // gpu.js fixes each argument's size (texture dimensions) when it compiles a kernel, so the size is part of the key:
    // a kernel compiled for a 12-element texture reads a 6-element one with the wrong layout
    const key = `${spec.outSize}|${args.map((a, k) => (a instanceof Float32Array ? `a${a.length}` : `t${spec.inputs[k].size}`)).join(',')}|${spec.source}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu.createKernel(spec.source, {
        output: [spec.outSize],
        pipeline: this.resident,
        immutable: true,
        precision: 'single',
        tactic: 'precision',
        loopMaxIterations: Math.max(1000, (spec.loopMax ?? 0) + 1),
        strictIntegers: false,
      });
      this.kernels.set(key, kernel);
      this.stats.kernelsCompiled++;
    }
    this.stats.kernelRuns++;
    let out = kernel(...args, ...spec.scalars);
    if (!this.resident && !(out instanceof Float32Array)) out = Float32Array.from(out as ArrayLike<number>);
    return new DeviceBuffer(this, out, spec.outSize);
  }

  /** Synchronous read-back (host copy owned by the caller). */
  read(buf: DeviceBuffer): Float32Array {
    const h = buf.handle;
    if (h === null) throw new Error('tensor data was released (disposed or freed by tidy())');
    if (h instanceof Float32Array) return h;
    const arr = h.toArray();
    return arr instanceof Float32Array ? arr : Float32Array.from(arr.flat ? arr.flat(3) : arr);
  }

  async readAsync(buf: DeviceBuffer): Promise<Float32Array> {
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
