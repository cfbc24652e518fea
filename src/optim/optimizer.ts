/**
 * The Optimizer base (torch.optim.Optimizer): parameter groups with per-group options, per-parameter
 * state, zeroGrad, stateDict / loadStateDict. Subclasses implement `update` for one group.
 *
 * Updates run under noGrad and write parameters in place (their storage takes the new values), so the
 * parameter objects a model holds stay the same. State tensors are `keep()`-ed so they outlive any
 * `tidy()` the training step runs in.
 */
import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { fmtShape, sameShape } from '../tensor/shape';
import { enableGrad, noGrad } from '../autograd/grad-mode';
import { isUninitialized } from '../nn/parameter';
import { clone, toDevice } from '../ops';

export type StateValue = Tensor | number;
export type ParamState = Record<string, StateValue>;
/** A parameter group: its tensors and its options (lr, ...). */
export type ParamGroup<O> = O & { params: Tensor[] };
/** What the constructor takes for a group: tensors plus any options that differ from the defaults. */
export type ParamGroupSpec<O> = Partial<O> & { params: Iterable<Tensor> };
export type Params<O> = Iterable<Tensor> | Iterable<ParamGroupSpec<O>>;

/** Parameters by index (in group order), as torch.optim.Optimizer.state_dict() packs them. */
export interface OptimizerStateDict<O = Record<string, unknown>> {
  state: Record<number, ParamState>;
  paramGroups: (O & { params: number[] })[];
}

/** Keys that would reach an object's prototype machinery if copied from a loaded (untrusted) dict. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function copyOption(v: unknown): unknown {
  return Array.isArray(v) ? [...v] : v;
}

function cloneState(s: ParamState, device?: Tensor['device']): ParamState {
  const out: ParamState = {};
  for (const [k, v] of Object.entries(s)) {
    out[k] = v instanceof Tensor ? keep(noGrad(() => clone(device ? toDevice(v, device) : v).detach())) : v;
  }
  return out;
}

function disposeState(s: ParamState | undefined): void {
  if (!s) return;
  for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
}

export abstract class Optimizer<O extends object = { lr: number }> {
  readonly defaults: O;
  paramGroups: ParamGroup<O>[] = [];
  /** per-parameter state (momentum buffers, moments, step counts) */
  state = new Map<Tensor, ParamState>();

  constructor(params: Params<O>, defaults: O) {
    this.defaults = defaults;
    if (params instanceof Tensor)
      throw new Error(`${this.name}: params should be an iterable of Tensors or of parameter groups, got a single Tensor`);
    if (!params || typeof (params as any)[Symbol.iterator] !== 'function') {
      const hint = params && typeof (params as any).parameters === 'function' ? ' (pass model.parameters(), not the model)' : '';
      throw new Error(`${this.name}: params should be an iterable of Tensors or of parameter groups${hint}`);
    }
    const list = [...(params as Iterable<Tensor | ParamGroupSpec<O>>)];
    if (list.length === 0) throw new Error(`${this.name}: got an empty parameter list`);
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] } as unknown as ParamGroupSpec<O>] : (list as ParamGroupSpec<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  protected get name(): string {
    return this.constructor.name;
  }

  /** Adds a group; options it leaves out come from the defaults. */
  addParamGroup(spec: ParamGroupSpec<O>): void {
    if (!spec || typeof spec !== 'object' || spec instanceof Tensor || !('params' in spec)) {
      throw new Error(`${this.name}: a parameter group must be an object with a 'params' list`);
    }
    const params = spec.params instanceof Tensor ? [spec.params] : [...spec.params];
    params.forEach((p, i) => {
      if (!(p instanceof Tensor))
        throw new Error(`${this.name}: parameter ${i} of group ${this.paramGroups.length} is not a Tensor (got ${p === null ? 'null' : typeof p})`);
      if (!isUninitialized(p) && !p.isLeaf)
        throw new Error(
          `${this.name}: can't optimize a non-leaf Tensor (parameter ${i} of shape ${fmtShape(p.shape)} was computed by ${p.gradFn?.name})`,
        );
    });
    if (new Set(params).size !== params.length) throw new Error(`${this.name}: a parameter group lists the same parameter twice`);
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => seen.has(p))) throw new Error(`${this.name}: some parameters appear in more than one parameter group`);
    const group: any = { params };
    for (const [k, v] of Object.entries(this.defaults)) group[k] = copyOption(k in spec ? (spec as any)[k] : v);
    for (const k of Object.keys(spec)) if (!(k in group)) throw new Error(`${this.name}: unknown option '${k}' in a parameter group`);
    this.validate(group as ParamGroup<O>);
    this.paramGroups.push(group);
  }

  /** Throws on invalid options (negative lr, ...). */
  protected abstract validate(group: ParamGroup<O>): void;

  /** Applies one update to every parameter of `group` that has a gradient (called under noGrad). */
  protected abstract update(group: ParamGroup<O>): void;

  /** One optimisation step. `closure` (optional) re-evaluates the model and returns the loss. */
  step(closure?: () => Tensor | number): number | undefined {
    let loss: number | undefined;
    if (closure) {
      const l = enableGrad(closure);
      loss = l instanceof Tensor ? l.item() : l;
    }
    noGrad(() => {
      for (const g of this.paramGroups) this.update(g);
    });
    return loss;
  }

  /** Resets the gradients of every parameter: to null by default (set_to_none), or to zeros. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) p.grad = null;
        else noGrad(() => p.grad!.zero_());
      }
    }
  }

  /** The parameters of a group that have gradients, with their state (created empty on first use). */
  protected *withGrads(group: ParamGroup<O>): Generator<[Tensor, Tensor, ParamState]> {
    for (const p of group.params) {
      if (!p.grad || isUninitialized(p)) continue;
      let s = this.state.get(p);
      if (!s) this.state.set(p, (s = {}));
      yield [p, p.grad, s];
    }
  }

  /** Replaces a state tensor, keeping the new one alive across tidy() and freeing the old one. */
  protected setState(s: ParamState, key: string, t: Tensor): Tensor {
    const old = s[key];
    s[key] = keep(t);
    if (old instanceof Tensor && old !== t) old.dispose();
    return t;
  }

  /** Writes `value` into parameter `p` in place (the parameter object and its identity stay). */
  protected writeParam(p: Tensor, value: Tensor): void {
    p.copy_(value);
    value.dispose();
  }

  /** A snapshot of options and state, with parameters replaced by their index (as PyTorch's state_dict). */
  stateDict(): OptimizerStateDict<O> {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const packed: any = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[k] = copyOption(v);
      packed.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return packed;
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) if (index.has(p)) state[index.get(p)!] = cloneState(s);
    return { state, paramGroups };
  }

  /** Restores options and state saved by stateDict(); everything is checked before anything changes. */
  loadStateDict(sd: OptimizerStateDict<O>): void {
    if (!sd || typeof sd !== 'object' || !Array.isArray(sd.paramGroups) || typeof sd.state !== 'object') {
      throw new Error(`${this.name}.loadStateDict: expected { state, paramGroups } as returned by stateDict()`);
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `${this.name}.loadStateDict: loaded state dict has ${sd.paramGroups.length} parameter groups, this optimizer has ${this.paramGroups.length}`,
      );
    }
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((g, i) => {
      const mine = this.paramGroups[i].params;
      if (!Array.isArray(g.params) || g.params.length !== mine.length) {
        throw new Error(
          `${this.name}.loadStateDict: parameter group ${i} has ${g.params?.length} parameters in the state dict but ${mine.length} here`,
        );
      }
      g.params.forEach((id, k) => byIndex.set(id, mine[k]));
    });
    const problems: string[] = [];
    for (const [id, s] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(id));
      if (!p) {
        problems.push(`state for parameter ${id}, which no parameter group lists`);
        continue;
      }
      if (!s || typeof s !== 'object') {
        problems.push(`state of parameter ${id} is ${s === null ? 'null' : typeof s}, not an object`);
        continue;
      }
      for (const [k, v] of Object.entries(s)) {
        if (UNSAFE_KEYS.has(k)) problems.push(`state of parameter ${id} has a key named '${k}'`);
        else if (v instanceof Tensor) {
          if (v.isDisposed) problems.push(`state '${k}' of parameter ${id} is a disposed tensor`);
          else if (!isUninitialized(p) && v.ndim > 0 && !sameShape(v.shape, p.shape)) {
            problems.push(`state '${k}' of parameter ${id} has shape ${fmtShape(v.shape)}, the parameter has shape ${fmtShape(p.shape)}`);
          }
        } else if (typeof v !== 'number')
          problems.push(`state '${k}' of parameter ${id} is ${v === null ? 'null' : typeof v}, not a tensor or number`);
      }
    }
    sd.paramGroups.forEach((g, i) => {
      for (const k of Object.keys(g)) if (UNSAFE_KEYS.has(k)) problems.push(`parameter group ${i} has an option named '${k}'`);
    });
    if (problems.length) throw new Error(`${this.name}.loadStateDict: nothing was loaded:\n  ${problems.join('\n  ')}`);
    // copy everything first (a copy can still fail, e.g. a device move), then swap and free the old state
    const staged = new Map<Tensor, ParamState>();
    try {
      for (const [id, s] of Object.entries(sd.state)) {
        const p = byIndex.get(Number(id))!;
        staged.set(p, cloneState(s, p.device));
      }
    } catch (e) {
      for (const s of staged.values()) disposeState(s);
      throw e;
    }
    for (const s of this.state.values()) disposeState(s);
    this.state = staged;
    sd.paramGroups.forEach((g, i) => {
      const mine: Record<string, unknown> = this.paramGroups[i];
      for (const [k, v] of Object.entries(g)) if (k !== 'params') mine[k] = copyOption(v);
    });
  }

  toString(): string {
    const lines = [`${this.name} (`];
    this.paramGroups.forEach((g, i) => {
      lines.push(`Parameter Group ${i}`);
      for (const [k, v] of Object.entries(g).sort(([a], [b]) => a.localeCompare(b))) {
        if (k !== 'params') lines.push(`    ${k}: ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
      }
    });
    lines.push(')');
    return lines.join('\n');
  }
}
