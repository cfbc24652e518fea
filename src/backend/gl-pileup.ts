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
  spilled(budgetMb: number, resident: number): void {
    if (this.warned) return;
    this.warned = true;
    // more textures made since the last turn than are resident: a loop that does not yield, most likely
    const why =
      this.sinceTurn > resident
        ? `${this.sinceTurn} textures were made since the event loop last turned: a loop that never yields keeps the ` +
          'textures of its dropped tensors until finalizers run, which is only when it yields. Yield once per step ' +
          '(`await loss.data()`) or free each step with tidy(), `using` or dispose() to avoid the read-backs.'
        : 'the tensors in use need more than that: raise the budget to avoid the read-backs.';
    warnOnce(
      `GL textures exceeded the budget of ${budgetMb} MiB (setBackendOptions({ glTextureBudgetMb })): the least recently used ` +
        `are being spilled to host memory (read back, uploaded again when next used). ${why} (docs/MEMORY.md)`,
    );
  }
}
