/**
 * Per-instance bookkeeping of a Module, kept off its public surface: which names are registered and as
 * what (in registration order), buffer persistence, training flag, hooks.
 */
import type { FieldEntry, FieldKind } from './registry';

/** May return new arguments: an array of them, or a single value (the only argument). */
export type ForwardPreHook = (module: any, args: unknown[]) => unknown;
export type ForwardHook = (module: any, args: unknown[], output: unknown) => unknown | void;

export interface ModuleState {
  /** registered names and their kinds, in registration order */
  kinds: Map<string, FieldKind>;
  /** buffers left out of stateDict */
  nonPersistent: Set<string>;
  /** kinds declared by runtime standard decorators for fields about to be defined */
  declared: Map<string, FieldEntry>;
  training: boolean;
  preHooks: Map<number, ForwardPreHook>;
  hooks: Map<number, ForwardHook>;
}

export const STATE = Symbol('tsnn.moduleState');

export function newState(): ModuleState {
  return { kinds: new Map(), nonPersistent: new Set(), declared: new Map(), training: true, preHooks: new Map(), hooks: new Map() };
}

export function stateOf(m: object): ModuleState {
  const s = (m as any)[STATE] as ModuleState | undefined;
  if (!s) throw new Error('internal: not a tsnn Module (did its constructor call super()?)');
  return s;
}

/** Standard decorators call this from their field initializer, just before the field is defined. */
export function declareField(instance: object, entry: FieldEntry): void {
  const s = (instance as any)[STATE] as ModuleState | undefined;
  if (!s) throw new Error(`@${entry.kind} '${entry.name}' is on a class that does not extend nn.Module`);
  s.declared.set(entry.name, entry);
}
