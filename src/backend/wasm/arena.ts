/**
 * One WebAssembly memory for the direct kernels, with a pooled allocator: blocks come in power-of-two
 * size classes (4 KiB and up), freed blocks go to their class's free list and are reused, and the memory
 * grows when no free block fits. Memory never shrinks (WebAssembly cannot), so the pool is what keeps a
 * training loop's packing scratch from growing: step after step asks for the same sizes.
 *
 * Growing a non-shared memory detaches its old ArrayBuffer: `f32` is re-made whenever the buffer changed.
 */
import { PAGE_BYTES, WasmMemory, wasmApi } from './runtime';

const MIN_CLASS = 12; // 4 KiB
/** 2 GiB: keeps every byte address a positive i32 */
export const MAX_PAGES = 32768;

export class WasmArena {
  readonly memory: WasmMemory;
  private top: number;
  private readonly freeLists = new Map<number, number[]>();
  private readonly classOf = new Map<number, number>();
  private view: Float32Array;
  /** bytes handed out and not yet freed, and the memory's size (for tests and diagnostics) */
  readonly stats = { inUse: 0, blocks: 0 };

  /** `reserved`: bytes at address 0 kept out of the pool (the peak probe's scratch). */
  constructor(reserved = 64) {
    if (!wasmApi) throw new Error('WebAssembly is not available here');
    this.memory = new wasmApi.Memory({ initial: 16, maximum: MAX_PAGES });
    this.top = Math.max(64, reserved);
    this.view = new Float32Array(this.memory.buffer);
  }

  /** A Float32Array over the whole memory, valid until the next alloc. */
  get f32(): Float32Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }

  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** A block of at least `bytes` bytes, 64-byte aligned; its byte address. */
  alloc(bytes: number, what = 'matmul'): number {
    const cls = Math.max(MIN_CLASS, Math.ceil(Math.log2(Math.max(1, bytes))));
    const size = 2 ** cls;
    const list = this.freeLists.get(cls);
    let at = list && list.length > 0 ? list.pop()! : -1;
    if (at < 0) {
      at = this.top;
      const end = at + size;
      if (end > this.bytes) {
        const pages = Math.ceil((end - this.bytes) / PAGE_BYTES);
        if (this.bytes / PAGE_BYTES + pages > MAX_PAGES) {
          throw new RangeError(
            `${what}: the webasm kernels' WebAssembly memory cannot grow past ${MAX_PAGES * (PAGE_BYTES >> 20)} MiB (asked for ${size} more bytes)`,
          );
        }
        this.memory.grow(pages);
      }
      this.top = end;
    }
    this.classOf.set(at, cls);
    this.stats.inUse += size;
    this.stats.blocks++;
    return at;
  }

  free(at: number): void {
    const cls = this.classOf.get(at);
    if (cls === undefined) throw new Error(`internal: wasm arena block ${at} freed twice or never allocated`);
    this.classOf.delete(at);
    let list = this.freeLists.get(cls);
    if (!list) this.freeLists.set(cls, (list = []));
    list.push(at);
    this.stats.inUse -= 2 ** cls;
    this.stats.blocks--;
  }
}
