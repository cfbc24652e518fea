/**
 * stateDict / loadStateDict. Loading is all or nothing: every entry is validated, then every copy is
 * staged (moved to the target's device), and only then are the module's tensors overwritten.
 *
 * A state dict is data (often read from a file): its keys are held in a Map, never used as property
 * names of a plain object, so keys such as `constructor` or `__proto__` are keys like any other.
 */
import { Tensor } from '../tensor/tensor';
import { Storage } from '../tensor/storage';
import { fmtShape, sameShape } from '../tensor/shape';
import { noGrad } from '../autograd/grad-mode';
import { toDevice } from '../ops/shape';
/** What state dicts need of a module (nn.Module has it; structural, so this file does not import module.ts back). */
interface StateModule {
  namedModulesAll(): [string, object][];
}
import { stateOf } from './module-state';
import { isUninitialized } from './parameter';

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** What loadStateDict accepts: an object of name -> Tensor (own enumerable keys) or a Map. */
export type StateDictInput = Record<string, Tensor> | Map<string, Tensor>;

/**
 * A module with state that older or foreign checkpoints may lack supplies it here (PyTorch does this in
 * `_load_from_state_dict` overrides): local name -> a maker of the value to load when the key is absent.
 */
export const LOAD_DEFAULTS = Symbol('tsnn.loadDefaults');
interface WithLoadDefaults {
  [LOAD_DEFAULTS](): Map<string, () => Tensor>;
}

/**
 * The live tensors behind stateDict(), in PyTorch's order (each module's parameters, then its persistent
 * buffers, then its children's), under every name that reaches them (tied tensors repeat).
 */
export function stateEntries(module: StateModule): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  for (const [prefix, m] of module.namedModulesAll()) {
    const s = stateOf(m);
    const named = (kind: 'param' | 'buffer') =>
      [...s.kinds].filter(([n, k]) => k === kind && !(kind === 'buffer' && s.nonPersistent.has(n))).map(([n]) => n);
    for (const name of [...named('param'), ...named('buffer')]) {
      const t = (m as any)[name] as Tensor | null | undefined;
      if (t) out.push([prefix ? `${prefix}.${name}` : name, t]);
    }
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'object' || typeof v === 'function') return (v as object).constructor?.name ?? 'an object with no prototype';
  return typeof v;
}

/** The entries of `sd`, read once. */
function entriesOf(sd: StateDictInput): Map<string, unknown> {
  if (sd instanceof Map) {
    for (const k of sd.keys()) if (typeof k !== 'string') throw new Error(`loadStateDict: state dict keys must be strings, got ${typeof k}`);
    return new Map(sd);
  }
  if (!sd || typeof sd !== 'object' || Array.isArray(sd)) {
    throw new Error(`loadStateDict: expected an object (or Map) of name -> Tensor, got ${Array.isArray(sd) ? 'an array' : describe(sd)}`);
  }
  // own enumerable string keys only: Object.entries keeps a key named '__proto__' and ignores inherited ones
  return new Map(Object.entries(sd));
}

/** Why `src` cannot be loaded into `target` under `key`, or null. */
function problemWith(key: string, src: unknown, target: Tensor): string | null {
  if (!(src instanceof Tensor)) return `'${key}': expected a Tensor, got ${describe(src)}`;
  if (isUninitialized(src)) return `'${key}': the checkpoint holds an uninitialized lazy parameter (save the model after its first forward pass)`;
  if (src.isDisposed || src.storage.released)
    return `'${key}': the checkpoint's tensor of shape ${fmtShape(src.shape)} was disposed (its data is released)`;
  if (isUninitialized(target))
    return `'${key}': cannot load into an uninitialized lazy parameter; run one forward pass first so the layer knows its input size`;
  if (target.isDisposed || target.storage.released) return `'${key}': the module's own tensor of shape ${fmtShape(target.shape)} was disposed`;
  if (!sameShape(src.shape, target.shape)) {
    return `size mismatch for '${key}': copying a param with shape ${fmtShape(src.shape)} from checkpoint, the shape in current model is ${fmtShape(target.shape)}`;
  }
  return null;
}

/**
 * `src`'s current value on `device`, independent of later writes: device buffers are immutable and
 * in-place writes swap a Storage's buffer, so a new Storage over today's buffer is a snapshot. This
 * makes a checkpoint that holds the module's own tensors (or views of them) load as it read at the start.
 */
function stage(src: Tensor, device: Tensor['device']): Tensor {
  const snap = new Tensor(new Storage(src.storage.buffer), src.shape, src.strides, src.offset);
  if (snap.device === device) return snap;
  try {
    return toDevice(snap, device);
  } finally {
    snap.dispose();
  }
}

export function loadStateDictInto(module: StateModule, sd: StateDictInput, strict: boolean): LoadResult {
  const given = entriesOf(sd);
  const live = new Map(stateEntries(module));
  const made: Tensor[] = [];
  try {
    for (const [prefix, m] of module.namedModulesAll()) {
      const defaults = (m as unknown as Partial<WithLoadDefaults>)[LOAD_DEFAULTS];
      if (typeof defaults !== 'function') continue;
      for (const [name, make] of defaults.call(m)) {
        const key = prefix ? `${prefix}.${name}` : name;
        if (live.has(key) && !given.has(key)) {
          const t = noGrad(make);
          made.push(t);
          given.set(key, t);
        }
      }
    }
    return load(module, given, live, strict);
  } finally {
    made.forEach((t) => t.dispose());
  }
}

function load(module: StateModule, given: Map<string, unknown>, live: Map<string, Tensor>, strict: boolean): LoadResult {
  const unexpectedKeys = [...given.keys()].filter((k) => !live.has(k));
  // a tied tensor saved once (safetensors drops aliases) is not missing if its twin is present
  const present = new Set([...given.keys()].filter((k) => live.has(k)).map((k) => live.get(k)));
  const missingKeys = [...live].filter(([k, t]) => !given.has(k) && !present.has(t)).map(([k]) => k);
  const problems: string[] = [];
  const pairs: [string, Tensor, Tensor][] = [];
  for (const [key, target] of live) {
    if (!given.has(key)) continue;
    const src = given.get(key);
    const problem = problemWith(key, src, target);
    if (problem) problems.push(problem);
    else pairs.push([key, target, src as Tensor]);
  }
  if (strict) {
    // PyTorch's order: missing keys, unexpected keys, then the per-tensor problems
    if (unexpectedKeys.length) problems.unshift(`unexpected keys: ${unexpectedKeys.map((k) => `'${k}'`).join(', ')}`);
    if (missingKeys.length) problems.unshift(`missing keys: ${missingKeys.map((k) => `'${k}'`).join(', ')}`);
  }
  const fail = (list: string[]): never => {
    throw new Error(`Error(s) in loading state dict for ${module.constructor.name} (nothing was changed):\n  ${list.join('\n  ')}`);
  };
  if (problems.length) fail(problems);

  // stage every copy (device moves can fail) before the first write
  const staged: [Tensor, Tensor][] = [];
  try {
    for (const [key, target, src] of pairs) {
      try {
        staged.push([target, noGrad(() => stage(src, target.device))]);
      } catch (e) {
        problems.push(`'${key}': could not move the checkpoint's tensor from ${src.device} to ${target.device}: ${(e as Error).message}`);
      }
    }
    if (problems.length) fail(problems);
    // same device, same shape: each copy only swaps in the staged buffer
    noGrad(() => staged.forEach(([t, s]) => t.copy_(s)));
  } finally {
    staged.forEach(([, s]) => s.dispose());
  }
  return { missingKeys, unexpectedKeys };
}
