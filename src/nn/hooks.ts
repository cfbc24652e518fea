/**
 * Running a module's forward hooks, in one place: `Module.call` uses it, and so does `nn.compile`, which
 * runs the called model's own hooks around its compiled forward. While a compiled forward is being
 * captured, `hookInterception.current` sees every hook call inside it (src/graph/capture-hooks.ts), so
 * the capture can tell hooks that only observe from hooks that replace inputs or outputs.
 */
import { stateOf } from './module-state';

export type HookKind = 'pre' | 'forward';

export interface HookInterceptor {
  /** Calls `hook` as Module.call would and returns its result. */
  run(kind: HookKind, module: object, id: number, hook: (...a: any[]) => unknown, args: unknown[], output?: unknown): unknown;
}

export const hookInterception: { current: HookInterceptor | null } = { current: null };

function invoke(kind: HookKind, module: object, id: number, hook: (...a: any[]) => unknown, args: unknown[], output?: unknown): unknown {
  const i = hookInterception.current;
  if (i) return i.run(kind, module, id, hook, args, output);
  return kind === 'pre' ? hook(module, args) : hook(module, args, output);
}

/** Forward pre-hooks in registration order; each may return new arguments (an array, or the single one). */
export function runPreHooks(module: object, args: unknown[]): unknown[] {
  for (const [id, hook] of stateOf(module).preHooks) {
    const r = invoke('pre', module, id, hook, args);
    if (r !== undefined) args = Array.isArray(r) ? r : [r];
  }
  return args;
}

/** Forward hooks in registration order; each may return a replacement output. */
export function runForwardHooks(module: object, args: unknown[], output: unknown): unknown {
  for (const [id, hook] of stateOf(module).hooks) {
    const r = invoke('forward', module, id, hook, args, output);
    if (r !== undefined) output = r;
  }
  return output;
}

/** Whether a hook's result replaces what it was handed (returning nothing, or the very same values, does not). */
export function hookReplaces(kind: HookKind, result: unknown, args: unknown[], output?: unknown): boolean {
  if (result === undefined) return false;
  if (kind === 'forward') return result !== output;
  const next = Array.isArray(result) ? result : [result];
  return result !== args && (next.length !== args.length || next.some((a, k) => a !== args[k]));
}
