/**
 * GL textures that nobody released are deleted by finalizers, and JavaScript runs finalizers only when
 * the event loop turns (a WeakRef made inside a synchronous loop even keeps its target alive until then).
 * So a training loop that never yields piles up one texture per forward output the user could still hold
 * (autograd frees everything it made itself): nothing can tell a dropped tensor from a kept one without the
 * collector's help. This watches for that pile-up and says once what to do, instead of failing silently
 * later with GL out of memory.
 */
import { warnOnce } from '../util/warn-once';

/** Unreleased textures made since the event loop last turned at which the warning is shown. */
export const PILEUP_WARN_AT = 20000;

const later: (f: () => void) => void = (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate ?? ((f) => setTimeout(f, 0));

/** Resolves after the event loop has turned (a task, not a microtask): finalizers may run in between. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => later(resolve));
}

export class TexturePileup {
  private liveAtTurn = 0;
  private waiting = false;

  /** Called when a texture is made; `live` is the backend's count of textures not yet deleted. */
  made(live: number): void {
    if (!this.waiting) {
      this.waiting = true;
      this.liveAtTurn = live - 1;
      later(() => {
        this.waiting = false;
      });
    } else if (live - this.liveAtTurn >= PILEUP_WARN_AT) {
      warnOnce(
        `over ${PILEUP_WARN_AT} GL textures were made and not released since the event loop last turned. A loop that ` +
          'never yields keeps them until it does (finalizers run only then): yield now and then (`await loss.data()`), ' +
          'or free each step with tidy(), `using` or dispose() (docs/MEMORY.md).',
      );
    }
  }
}
