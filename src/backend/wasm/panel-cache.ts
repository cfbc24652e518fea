/**
 * Packed B panels kept between calls: "weight packing", as src/ops/packed-operand.ts does for the gpu.js
 * kernels and XNNPACK does per operator. Device buffers are immutable (an in-place write swaps in a new
 * buffer), so a host array plus the view read from it names the packed contents exactly: inference packs
 * each weight once, a training step re-packs each weight once after the optimizer replaced it.
 *
 * Kept from the second use on: a B seen once (a training step's weights are each read once per view
 * before the optimizer replaces them, activations once) is packed and dropped, so a training loop does not
 * fill the arena with panels nobody reads again. Bounded: at most `budget` bytes of panels, least recently
 * used evicted first. Lookup is a WeakMap on the host array, so the cache never keeps a tensor's memory
 * alive; panels of a collected array stay in the arena until evicted (at most the budget).
 */
import type { WasmArena } from './arena';
import type { MatrixView } from './pack';
import { option } from '../../platform/options';

interface Entry {
  view: string;
  at: number;
  bytes: number;
  live: boolean;
}

export class PanelCache {
  /** bytes of packed panels kept (TSNN_WASM_PANEL_CACHE_MB, default 64 MiB) */
  budget = (option('wasmPanelCacheMb') ?? 64) * 2 ** 20;
  private readonly byArray = new WeakMap<Float32Array, Entry[]>();
  /** views of each array packed once already (a second packing is kept) */
  private readonly seen = new WeakMap<Float32Array, Set<string>>();
  /** insertion / use order, oldest first */
  private readonly lru = new Set<Entry>();
  private held = 0;
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly arena: WasmArena) {}

  private static viewKey(B: MatrixView, K: number, N: number): string {
    return `${B.offset}|${B.rs}|${B.cs}|${K}|${N}`;
  }

  /** Byte address of B's packed panels, or -1. */
  get(key: Float32Array | null, B: MatrixView, K: number, N: number): number {
    if (!key) return -1;
    const view = PanelCache.viewKey(B, K, N);
    const e = this.byArray.get(key)?.find((x) => x.live && x.view === view);
    if (!e) {
      this.stats.misses++;
      return -1;
    }
    this.stats.hits++;
    this.lru.delete(e);
    this.lru.add(e);
    return e.at;
  }

  /** Would `put` keep this B (its view was used before)? If not, notes this use. */
  wants(key: Float32Array, B: MatrixView, K: number, N: number): boolean {
    const view = PanelCache.viewKey(B, K, N);
    let views = this.seen.get(key);
    if (!views) this.seen.set(key, (views = new Set()));
    if (views.has(view)) return true;
    views.add(view);
    return false;
  }

  /**
   * Hands the block at `at` (`bytes` of packed B) to the cache, evicting older entries to stay in budget;
   * false (the caller keeps the block) on the view's first packing, or when it alone is over the budget.
   */
  put(key: Float32Array, B: MatrixView, K: number, N: number, at: number, bytes: number): boolean {
    if (bytes > this.budget) return false;
    const view = PanelCache.viewKey(B, K, N);
    let views = this.seen.get(key);
    if (!views) this.seen.set(key, (views = new Set()));
    if (!views.has(view)) {
      views.add(view); // first packing of this view: not kept
      return false;
    }
    const e: Entry = { view, at, bytes, live: true };
    let list = this.byArray.get(key);
    if (!list) this.byArray.set(key, (list = []));
    for (let i = list.length - 1; i >= 0; i--) if (!list[i].live) list.splice(i, 1);
    list.push(e);
    this.lru.add(e);
    this.held += bytes;
    for (const old of this.lru) {
      if (this.held <= this.budget) break;
      if (old !== e) this.evict(old);
    }
    return true;
  }

  /** Drops every entry of `key` (its contents are about to change: out-pool.ts reuses it). */
  forget(key: Float32Array): void {
    for (const e of this.byArray.get(key) ?? []) if (e.live) this.evict(e);
    this.byArray.delete(key);
    this.seen.delete(key);
  }

  private evict(e: Entry): void {
    this.lru.delete(e);
    e.live = false;
    this.held -= e.bytes;
    this.arena.free(e.at);
  }

  clear(): void {
    for (const e of [...this.lru]) this.evict(e);
  }
}
