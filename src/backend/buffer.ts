/**
 * Device buffers and kernel specs: what ops, the kernel builder, the thread splitter and the graph capture
 * share with the Backend (gpujs-backend.ts, which re-exports all of it). A leaf: it imports no module that
 * imports it back, so none of them forms an import circle through the Backend.
 */
import type { DeviceName } from './device';

/** What a kernel reads: a device buffer or a host array to upload. */
export type Handle = Float32Array | { toArray(): any; delete(): void; size?: number[] };

/**
 * Deletes the GL texture of a buffer that became unreachable without an explicit release (no dispose, no
 * tidy): GPU memory the garbage collector cannot see. The held value never references the buffer, so
 * registering does not keep it alive. Host buffers (cpu, webasm) are not registered at all: their memory is
 * the Float32Array, which the collector frees with the buffer, even inside a synchronous loop, where a
 * registry entry per buffer would itself pile up (~5 KB a step) until the event loop turned.
 */
export const unreachableTextures = new FinalizationRegistry<GlTextures>((held) => {
  held.stats.live--;
  deleteTextures(held);
});

/** The GL textures of one buffer: its values, and the Array(4) view of the same texels once a kernel asked for it. */
interface GlTextures {
  stats: BackendStats;
  texture: { delete(): void };
  quads: { delete(): void } | null;
}

export function deleteTextures(t: GlTextures): void {
  t.quads?.delete();
  t.texture.delete();
}

/** What a DeviceBuffer (and whoever holds one) needs of the backend that owns it: the Backend class (gpujs-backend.ts). */
export interface BufferBackend {
  readonly device: DeviceName;
  readonly stats: BackendStats;
  readonly pileup: { made(live: number): void };
  /** whether map-style kernels should run on a row grid (KernelBuilder) */
  readonly prefersRowGrid: boolean;
  free(buf: DeviceBuffer): void;
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
    readonly backend: BufferBackend,
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
