/**
 * GL memory as a bounded cache over host memory. Every GL buffer keeps its values in a GlSlot: a texture
 * while resident on the GPU, a host copy where one is known (uploaded from the host, read back, or spilled).
 * A backend's Residency holds the resident slots strongly in least-recently-used order; past the budget
 * (setBackendOptions({ glTextureBudgetMb }), TSNN_GL_TEXTURE_BUDGET_MB) the least recently used are
 * spilled: read back into their host copy (unless they have one), texture deleted. A spilled buffer is
 * uploaded again the next time a kernel reads it, with the same values.
 *
 * Why: a loop that never yields keeps the textures of its dropped tensors until finalizers run, which is
 * only when the event loop turns (docs/MEMORY.md). The collector does free those buffers inside the loop,
 * though, and a slot never references its buffer: once a garbage buffer's texture is spilled, nothing but
 * the buffer held the slot, so the collector frees its host copy too. Parameters and optimizer state are
 * used every step and stay resident; a step's dropped outputs are the least recently used and go.
 *
 * Finalizers: a resident buffer is registered with its slot as held value and unregister token (the
 * resident slot is held by the LRU anyway). Spilling unregisters it, so a garbage buffer leaves no registry
 * entry behind, and a finalizer never sees a texture already deleted.
 */
import type { TexturePileup } from './gl-pileup';
import { onOptionsChange, option } from '../platform/options';

/** A gpu.js texture as this module uses it. */
export interface GlTexture {
  delete(): void;
  toArray(): any;
  size?: number[];
}

/** The counts a Residency keeps (BackendStats has these fields). */
export interface ResidencyStats {
  live: number;
  resident: number;
  residentBytes: number;
  spills: number;
  spillReadbacks: number;
}

export const DEFAULT_GL_TEXTURE_BUDGET_MB = 256;
/**
 * What one texture is charged at least, in bytes: drivers allocate textures in pages, and each one has host
 * objects (gpu.js's, the WebGL wrapper's) besides its texels. Bounds the count of small textures too.
 */
export const MIN_TEXTURE_CHARGE = 4096;

/** The budget every GL backend applies, in MiB (read once here, and again when setBackendOptions changes it). */
export const glBudget = { mb: option('glTextureBudgetMb') ?? DEFAULT_GL_TEXTURE_BUDGET_MB };
onOptionsChange((changed) => {
  if (changed.includes('glTextureBudgetMb')) glBudget.mb = option('glTextureBudgetMb') ?? DEFAULT_GL_TEXTURE_BUDGET_MB;
});

/** GL: where one buffer's values are. Never references the buffer (so the collector can free a garbage one). */
export class GlSlot {
  /** the values on the GPU (4 per RGBA texel), or null: not uploaded yet, or spilled */
  texture: GlTexture | null = null;
  /** the Array(4) view of the same texels, once a tiled kernel read it (shares the GL texture) */
  quads: GlTexture | null = null;
  /** bytes charged for the texture while resident */
  bytes = 0;
  /** the kernel run that last read or wrote the texture (Residency.runs) */
  lastUse = 0;
  /** counted in stats.live (false once spilled: then only host memory, which the collector frees silently) */
  counted = true;

  constructor(
    readonly residency: Residency,
    /**
     * The values on the host too, where known without a read-back or read back already: buffers are
     * immutable, so this copy never goes stale.
     */
    public host: Float32Array | null,
  ) {}

  get resident(): boolean {
    return this.texture !== null;
  }
}

/** Deletes the texture of a resident buffer that became unreachable without an explicit release. */
const unreachable = new FinalizationRegistry<GlSlot>((slot) => slot.residency.finalized(slot));

/** The resident textures of one GL backend, bounded by a budget of bytes. */
export class Residency {
  /** resident slots, least recently used first (a Map iterates in insertion order) */
  private readonly lru = new Map<GlSlot, true>();
  /** kernel runs so far: a slot used by the run in progress has lastUse === runs and is never spilled */
  runs = 0;

  constructor(
    readonly stats: ResidencyStats,
    private readonly pileup: TexturePileup,
  ) {}

  /** Makes `texture` the slot's values on the GPU; `owner` is the buffer (registered for finalization, not held). */
  adopt(slot: GlSlot, texture: GlTexture, owner: object, size: number): void {
    slot.texture = texture;
    const [w, h] = texture.size ?? [Math.ceil(size / 4), 1];
    slot.bytes = Math.max(MIN_TEXTURE_CHARGE, w * h * 16);
    if (!slot.counted) {
      slot.counted = true;
      this.stats.live++;
    }
    this.stats.resident++;
    this.stats.residentBytes += slot.bytes;
    unreachable.register(owner, slot, slot);
    this.pileup.made();
    this.touch(slot);
  }

  /** Marks a resident slot as used by the kernel run in progress (most recently used). */
  touch(slot: GlSlot): void {
    slot.lastUse = this.runs;
    this.lru.delete(slot);
    this.lru.set(slot, true);
  }

  /** Spills least recently used textures until under budget, never one the run in progress used. */
  trim(): void {
    const budget = glBudget.mb * 2 ** 20;
    if (this.stats.residentBytes <= budget) return;
    for (const slot of this.lru.keys()) {
      if (this.stats.residentBytes <= budget || slot.lastUse >= this.runs) break;
      this.spill(slot);
    }
  }

  /** Copies a resident slot's values to the host (if not there already) and deletes its texture. */
  spill(slot: GlSlot): void {
    if (!slot.texture) return;
    if (!slot.host) {
      const arr = slot.texture.toArray();
      slot.host = arr instanceof Float32Array ? arr : Float32Array.from(arr);
      this.stats.spillReadbacks++;
    }
    this.stats.spills++;
    unreachable.unregister(slot);
    this.evict(slot);
    if (slot.counted) {
      slot.counted = false;
      this.stats.live--;
    }
    this.pileup.spilled(glBudget.mb);
  }

  /** The buffer was released: its texture goes now (if resident) and so does its host copy. */
  release(slot: GlSlot): void {
    if (slot.texture) {
      unreachable.unregister(slot);
      this.evict(slot);
    }
    slot.host = null;
    if (slot.counted) {
      slot.counted = false;
      this.stats.live--;
    }
  }

  /**
   * The backend is destroyed, its GL context with it: forget every resident slot, so no finalizer that runs
   * later deletes a texture of a dead context (which throws "Invalid GL context" from a finalizer, uncaught).
   */
  close(): void {
    for (const slot of this.lru.keys()) {
      unreachable.unregister(slot);
      slot.texture = slot.quads = null;
    }
    this.lru.clear();
    this.stats.resident = this.stats.residentBytes = 0;
  }

  /** A finalizer: the buffer of a resident slot became unreachable. */
  finalized(slot: GlSlot): void {
    if (!slot.texture) return; // spilled or released since (those unregister; this is only a guard)
    this.evict(slot);
    if (slot.counted) {
      slot.counted = false;
      this.stats.live--;
    }
  }

  /** Deletes the slot's textures and forgets it. */
  private evict(slot: GlSlot): void {
    slot.quads?.delete();
    slot.texture!.delete();
    slot.quads = null;
    slot.texture = null;
    this.lru.delete(slot);
    this.stats.resident--;
    this.stats.residentBytes -= slot.bytes;
    slot.bytes = 0;
  }
}
