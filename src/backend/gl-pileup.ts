/**
 * GL textures that nobody released are deleted by finalizers, and JavaScript runs finalizers only when
 * the event loop turns (a WeakRef made inside a synchronous loop even keeps its target alive until then).
 * So a training loop that never yields piles up one texture per forward output the user could still hold
 * (autograd frees everything it made itself): nothing can tell a dropped tensor from a kept one without the
 * collector's help. The texture budget (gl-residency.ts) bounds them by spilling the least recently used to
 * host memory, which costs a read-back each; this says once that it happens, why, and how to avoid it.
 */
import { warnOnce } from '../util/warn-once';

const later: (f: () => void) => void = (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ?? ((f) => setTimeout(f, 0));

/** Resolves after the event loop has turned (a task, not a microtask): finalizers may run in between. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => later(resolve));
}

export class TexturePileup {
  /** textures made since the event loop last turned */
  sinceTurn = 0;
  private waiting = false;
  private warned = false;

  /** Called when a texture is made (a kernel output or an upload). */
  made(): void {
    this.sinceTurn++;
    if (this.waiting) return;
    this.waiting = true;
    later(() => {
      this.waiting = false;
      this.sinceTurn = 0;
    });
  }

  /** Called when a texture is spilled to host memory because resident textures exceeded `budgetMb`. */
  spilled(budgetMb: number): void {
    if (this.warned) return;
    this.warned = true;
    // which of the two it is cannot be told from here: one long synchronous step also makes many textures
    warnOnce(
      `GL textures exceeded the budget of ${budgetMb} MiB (setBackendOptions({ glTextureBudgetMb })): the least recently used ` +
        `are being spilled to host memory (read back, uploaded again when next used); ${this.sinceTurn} textures were made ` +
        'since the event loop last turned. In a loop that never yields, these are mostly the textures of dropped tensors, ' +
        'which finalizers delete only when it yields: yield once per step (`await loss.data()`) or free each step with ' +
        'tidy(), `using` or dispose() to avoid the read-backs. If the tensors one step uses need more, raise the budget. (docs/MEMORY.md)',
    );
  }
}
