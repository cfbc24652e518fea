/**
 * Device buffers and kernel specs: what ops, the kernel builder, the thread splitter and the graph capture
 * share with the Backend (gpujs-backend.ts, which re-exports all of it). A leaf: it imports no module that
 * imports it back, so none of them forms an import circle through the Backend.
 */
import type { DeviceName } from './device';
import { GlSlot, GlTexture, Residency } from './gl-residency';

/** What a kernel reads: a device buffer or a host array to upload. */
export type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

/** What a DeviceBuffer (and whoever holds one) needs of the backend that owns it: the Backend class (gpujs-backend.ts). */
export interface BufferBackend {
  readonly device: DeviceName;
  readonly stats: BackendStats;
  /** GL: tensors live in textures (gl-residency.ts); host backends: in Float32Arrays */
  readonly resident: boolean;
  /** GL: the resident textures, bounded by glTextureBudgetMb */
  readonly residency: Residency;
  /** whether map-style kernels should run on a row grid (KernelBuilder) */
  readonly prefersRowGrid: boolean;
  free(buf: DeviceBuffer): void;
}

export class DeviceBuffer {
  refs = 0;
  /**
   * GL: where the values are (gl-residency.ts): a texture while resident, a host copy where known (uploaded
   * from the host, read back, or spilled). Null on host backends, and once freed.
   */
  gl: GlSlot | null = null;
  /** The values: a Float32Array on host backends; GL: the slot; null once freed. */
  handle: Float32Array | GlSlot | null;
  constructor(
    readonly backend: BufferBackend,
    values: Float32Array | GlTexture,
    readonly size: number,
  ) {
    backend.stats.live++;
    backend.stats.allocated++;
    if (!backend.resident) {
      this.handle = values as Float32Array;
      return;
    }
    // a host array stays on the host until a kernel first reads it (then it is kept as the host copy)
    const host = values instanceof Float32Array ? values : null;
    this.handle = this.gl = new GlSlot(backend.residency, host);
    if (!host) backend.residency.adopt(this.gl, values as GlTexture, this, size);
  }
  /** GL: the values on the host, where known without a read-back (see gl); host backends: null. */
  get host(): Float32Array | null {
    return this.gl?.host ?? null;
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

export interface BackendStats {
  /** GL: host arrays uploaded to textures (once per buffer; a spilled buffer uploaded again counts in reuploads) */
  uploads: number;
  /** GL: buffers spilled to the host uploaded again because a kernel read them */
  reuploads: number;
  /** GL: textures on the GPU now, and the bytes charged for them (gl-residency.ts: bounded by glTextureBudgetMb) */
  resident: number;
  residentBytes: number;
  /** GL: textures spilled to host memory over the budget, and how many of those needed a read-back */
  spills: number;
  spillReadbacks: number;
  /** GL: textures read back to the host (once per buffer) */
  readbacks: number;
  /**
   * Buffers not yet freed. GL: until released, finalized or spilled (a spilled buffer is host memory, which
   * the collector frees without telling). Host backends: buffers not released explicitly (dispose, tidy,
   * refcount) — the garbage collector frees the others without telling.
   */
  live: number;
  allocated: number;
  kernelsCompiled: number;
  kernelRuns: number;
}
