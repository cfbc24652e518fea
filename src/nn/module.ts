/**
 * nn.Module: the one base class, as in PyTorch's module.py.
 *
 * A Module instance is callable (`net(x)` runs pre-hooks, forward, hooks). To make that possible the
 * constructor returns a Proxy over a function; the Proxy also routes every field definition and
 * assignment through the registration table (see registry.ts), so `this.hidden = new Linear(...)` on a
 * `@child` field registers the sub-module, a `@param` field gets a trainable leaf tensor, and a
 * Module stored in an unregistered field is an error instead of silently lost parameters.
 */
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import { keep } from '../tensor/scope';
import { noGrad } from '../autograd/grad-mode';
import { resolveDevice } from '../backend/devices';
import type { DeviceSpec } from '../backend/device';
import { rebind } from '../tensor/rebind';
import { toDevice } from '../ops/shape';
import { fieldsOf, declaredWith, FieldKind } from './registry';
import { ForwardHook, ForwardPreHook, newState, stateOf, STATE } from './module-state';
import { asParameter, isUninitialized } from './parameter';
import { callStack, currentPath } from './call-stack';
import { runForwardHooks, runPreHooks } from './hooks';
import { loadStateDictInto, stateEntries, LoadResult, StateDictInput } from './state-dict';
import { moduleRepr } from './repr';
import { describeValue } from '../util/describe';

export interface RemovableHandle {
  remove(): void;
}

let nextHookId = 0;

/** @tsnnModule */
export class Module {
  /** lets runtime checks recognise Module classes without importing this module */
  static readonly __tsnnIsModule = true;

  constructor() {
    const target = (() => undefined) as unknown as Module;
    // an arrow function has own `name` and `length`; users may want those as field names
    delete (target as any).name;
    delete (target as any).length;
    Object.setPrototypeOf(target, new.target.prototype);
    Object.defineProperty(target, STATE, { value: newState(), enumerable: false });
    const proxy: Module = new Proxy(target, {
      apply: (_t, _this, args) => proxy.call(...args),
      set: (t, key, value, receiver) => {
        if (typeof key === 'string' && !hasSetter(t, key)) return assignField(t, key, value);
        return Reflect.set(t, key, value, receiver);
      },
      defineProperty: (t, key, desc) => {
        if (typeof key === 'string' && 'value' in desc) return assignField(t, key, desc.value, desc);
        return Reflect.defineProperty(t, key, desc);
      },
    });
    return proxy;
  }

  /** The computation. Subclasses override it; `net(x)` calls it through hooks. */
  forward(..._args: any[]): any {
    throw new Error(`${this.constructor.name} is missing the required "forward" method`);
  }

  /** Runs pre-hooks, forward and hooks; what `net(x)` does. */
  call(...args: any[]): any {
    return callStack.within(this, () => {
      args = runPreHooks(this, args);
      return runForwardHooks(this, args, this.forward(...args));
    });
  }

  /** Throws an error prefixed with this module's path from the called root, e.g. `0.net.2 (Linear): ...`. */
  protected fail(message: string): never {
    const path = currentPath(this);
    throw new Error(`${path ? `${path} (${this.constructor.name})` : this.constructor.name}: ${message}`);
  }

  /** Checks the size of one dim of an input, with a PyTorch-style message. */
  protected expectDim(x: Tensor, dim: number, size: number, pattern: string): void {
    if (!(x instanceof Tensor)) this.fail(`expected a Tensor input, got ${x === null ? 'null' : typeof x}`);
    const d = dim < 0 ? x.ndim + dim : dim;
    if (d < 0 || d >= x.ndim || x.shape[d] !== size) this.fail(`expected input ${pattern}, got ${fmtShape(x.shape)}`);
  }

  // ---- registration ------------------------------------------------------------------------------
  addModule(name: string, module: Module | null): this {
    checkName(this, name, 'child');
    if (module !== null && !(module instanceof Module)) {
      throw new TypeError(`${this.constructor.name}.addModule('${name}'): expected a Module or null, got ${describeValue(module)}`);
    }
    stateOf(this).declared.set(name, { name, kind: 'child' });
    (this as any)[name] = module;
    return this;
  }

  registerModule(name: string, module: Module | null): this {
    return this.addModule(name, module);
  }

  registerParameter(name: string, t: Tensor | null): this {
    checkName(this, name, 'param');
    stateOf(this).declared.set(name, { name, kind: 'param' });
    (this as any)[name] = t;
    return this;
  }

  registerBuffer(name: string, t: Tensor | null, opts: { persistent?: boolean } = {}): this {
    checkName(this, name, 'buffer');
    stateOf(this).declared.set(name, { name, kind: 'buffer', persistent: opts.persistent ?? true });
    (this as any)[name] = t;
    return this;
  }

  // ---- traversal ---------------------------------------------------------------------------------
  private own(kind: FieldKind): [string, any][] {
    const out: [string, any][] = [];
    for (const [name, k] of stateOf(this).kinds) if (k === kind) out.push([name, (this as any)[name]]);
    return out;
  }

  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    return this.own('child').filter(([, m]) => m && !seen.has(m) && seen.add(m));
  }

  /** @internal every registered child under each of its names (repr shows shared children twice, like PyTorch). */
  namedChildrenAll(): [string, Module][] {
    return this.own('child').filter(([, m]) => m);
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** Every module in the tree (each once, depth first, this module first under the name ''). */
  namedModules(prefix = '', memo = new Set<Module>()): [string, Module][] {
    if (memo.has(this)) return [];
    memo.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.own('child')) {
      if (m) out.push(...m.namedModules(prefix ? `${prefix}.${name}` : name, memo));
    }
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  private namedTensors(kind: 'param' | 'buffer', recurse: boolean, onlyPersistent = false): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const mods: [string, Module][] = recurse ? this.namedModules() : [['', this]];
    for (const [prefix, m] of mods) {
      const s = stateOf(m);
      for (const [name, t] of m.own(kind)) {
        if (!t || seen.has(t) || (onlyPersistent && s.nonPersistent.has(name))) continue;
        seen.add(t);
        out.push([prefix ? `${prefix}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** Parameters with dotted names; a parameter shared by two places is listed once, under its first name. */
  namedParameters(opts: { recurse?: boolean } = {}): [string, Tensor][] {
    return this.namedTensors('param', opts.recurse ?? true);
  }

  parameters(opts: { recurse?: boolean } = {}): Tensor[] {
    return this.namedParameters(opts).map(([, t]) => t);
  }

  namedBuffers(opts: { recurse?: boolean } = {}): [string, Tensor][] {
    return this.namedTensors('buffer', opts.recurse ?? true);
  }

  buffers(opts: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers(opts).map(([, t]) => t);
  }

  // ---- state dict --------------------------------------------------------------------------------
  /**
   * Parameters and persistent buffers by dotted name (detached). Like PyTorch, a tied tensor appears under
   * every name that reaches it; `saveFile` stores it once.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [key, t] of stateEntries(this)) out[key] = isUninitialized(t) ? t : t.detach();
    return out;
  }

  /** Every (path, module) pair, shared modules under each of their names (what stateDict needs). */
  namedModulesAll(prefix = '', stack = new Set<Module>()): [string, Module][] {
    if (stack.has(this)) throw new Error(`${this.constructor.name}: module tree has a cycle at '${prefix}'`);
    stack.add(this);
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.own('child')) if (m) out.push(...m.namedModulesAll(prefix ? `${prefix}.${name}` : name, stack));
    stack.delete(this);
    return out;
  }

  /**
   * Copies tensors from `sd` (an object or a Map) into this module's parameters and buffers. All or
   * nothing: every problem (missing/unexpected keys, values that are not live tensors, shape mismatches,
   * uninitialised lazy parameters) is collected first and reported in one error; nothing is changed
   * unless everything fits.
   */
  loadStateDict(sd: StateDictInput, opts: { strict?: boolean } = {}): LoadResult {
    return loadStateDictInto(this, sd, opts.strict ?? true);
  }

  // ---- modes, devices, utilities -----------------------------------------------------------------
  get training(): boolean {
    return stateOf(this).training;
  }
  set training(on: boolean) {
    stateOf(this).training = on;
  }

  train(mode = true): this {
    for (const m of this.modules()) stateOf(m).training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Applies fn to every sub-module (children first) and then to this module. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /** Moves every parameter and buffer (and gradient) to `device`, keeping the tensor objects. */
  to(device: DeviceSpec): this {
    const d = resolveDevice(device);
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.buffers()]) {
        if (isUninitialized(t) || t.device === d) continue;
        rebind(t, toDevice(t, d));
        if (t.grad) t.grad = keep(toDevice(t.grad, d));
      }
    });
    return this;
  }

  /** Resets gradients: to null by default (PyTorch 2's set_to_none), or to zeros. */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone) p.grad = null;
      else noGrad(() => p.grad!.zero_());
    }
  }

  registerForwardPreHook(hook: ForwardPreHook): RemovableHandle {
    const id = nextHookId++;
    stateOf(this).preHooks.set(id, hook);
    return { remove: () => void stateOf(this).preHooks.delete(id) };
  }

  registerForwardHook(hook: ForwardHook): RemovableHandle {
    const id = nextHookId++;
    stateOf(this).hooks.set(id, hook);
    return { remove: () => void stateOf(this).hooks.delete(id) };
  }

  /** One-line summary of the module's configuration, shown in toString (like PyTorch's extra_repr). */
  extraRepr(): string {
    return '';
  }

  /** An indented tree like PyTorch's repr. */
  toString(): string {
    return moduleRepr(this);
  }
}

// console.log(net) prints the repr; keyed by symbol so the published types need no @types/node
Object.defineProperty(Module.prototype, Symbol.for('nodejs.util.inspect.custom'), {
  value(this: Module) {
    return this.toString();
  },
});

/** Call signature: `net(x)` is typed by the subclass's forward. */
export interface Module {
  (...args: Parameters<this['forward']>): ReturnType<this['forward']>;
}

function hasSetter(t: object, key: string): boolean {
  for (let o = Object.getPrototypeOf(t); o; o = Object.getPrototypeOf(o)) {
    const d = Object.getOwnPropertyDescriptor(o, key);
    if (d) return !!d.set;
  }
  return false;
}

function isModule(x: unknown): x is Module {
  return x instanceof Module;
}

function holdsModule(x: unknown): boolean {
  if (isModule(x)) return true;
  if (Array.isArray(x)) return x.some(isModule);
  if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) return Object.values(x).some(isModule);
  return x instanceof Map && [...x.values()].some(isModule);
}

/**
 * PyTorch's registration rules (register_buffer / register_parameter / add_module): a non-empty name
 * without '.', and no existing attribute of that name unless it already is a registration of the same
 * kind (re-registering replaces the value). A field declared with @child/@param/@buffer counts as
 * registered even before its value arrives, so every compile path (decorators, ttsc's table) agrees.
 */
function checkName(m: Module, name: string, kind: FieldKind): void {
  const cls = m.constructor.name;
  if (typeof name !== 'string' || !name) throw new Error(`${cls}: ${kind} name must be a non-empty string`);
  if (name.includes('.')) throw new Error(`${cls}: ${kind} name '${name}' cannot contain '.'`);
  const existing = stateOf(m).kinds.get(name) ?? fieldsOf(m.constructor).get(name)?.kind;
  if (existing) {
    if (existing !== kind) throw new Error(`${cls}: '${name}' is already registered as a ${existing}`);
    return;
  }
  if (!(name in m)) return;
  if (!Object.prototype.hasOwnProperty.call(m, name)) {
    throw new Error(`${cls}: '${name}' is already a property of the class; choose another name`);
  }
  // a TypeScript field declared without a value (`w!: Tensor`) is defined as undefined: not an attribute yet
  const value = (m as any)[name];
  if (value !== undefined) {
    throw new Error(
      `${cls}: cannot register ${kind} '${name}': attribute '${name}' already exists (${describe(value)}); delete it first or choose another name`,
    );
  }
}

/** Converts arrays/records of modules on a @child field into ModuleList/ModuleDict (set by containers.ts). */
export const childAdapters: { wrap?: (owner: Module, name: string, value: unknown) => Module } = {};

/**
 * Every field definition and assignment on a Module goes through here: registered names are validated
 * and recorded in order; a Module in an unregistered field is refused.
 */
function assignField(target: Module, name: string, value: unknown, desc?: PropertyDescriptor): boolean {
  const s = stateOf(target);
  const cls = target.constructor.name;
  const declaredNow = s.declared.get(name);
  const entry = declaredNow ?? fieldsOf(target.constructor).get(name);
  const kind = s.kinds.get(name) ?? entry?.kind;
  const fresh = !s.kinds.has(name);
  if (!kind) {
    if (holdsModule(value)) {
      throw new Error(`${cls}.${name} holds a Module but is not registered: add @child (or use addModule / nn.ModuleList / nn.ModuleDict)`);
    }
    return Reflect.defineProperty(target, name, desc ?? { value, writable: true, enumerable: true, configurable: true });
  }
  // The first field of a class to arrive registers all of that class's decorated fields, in declaration
  // order: with defined class fields (ES2022) they arrive in that order anyway; with assigned fields
  // (useDefineForClassFields: false) one assigned in the constructor would otherwise come last.
  if (fresh) {
    for (const e of declaredWith(target.constructor, name) ?? []) {
      if (s.kinds.has(e.name)) continue;
      s.kinds.set(e.name, e.kind);
      if (e.kind === 'buffer' && e.persistent === false) s.nonPersistent.add(e.name);
    }
  }
  let stored = value;
  if (value !== null && value !== undefined) {
    if (kind === 'child' && !isModule(value)) {
      if (holdsModule(value) && childAdapters.wrap) stored = childAdapters.wrap(target, name, value);
      else throw new Error(`${cls}.${name}: @child expects a Module, got ${describe(value)}`);
    }
    if ((kind === 'param' || kind === 'buffer') && !(value instanceof Tensor)) {
      throw new Error(`${cls}.${name}: @${kind} expects a Tensor, got ${describe(value)}`);
    }
    if (kind === 'param' && !isUninitialized(value)) asParameter(`${cls}.${name}`, value as Tensor);
    if (kind === 'buffer') keep(value as Tensor);
  }
  if (!s.kinds.has(name)) s.kinds.set(name, kind);
  // a declaration (decorator, registerBuffer) decides persistence; a plain re-assignment keeps it
  const decides = declaredNow ?? (fresh ? entry : undefined);
  if (kind === 'buffer' && decides?.kind === 'buffer') {
    if (decides.persistent === false) s.nonPersistent.add(name);
    else s.nonPersistent.delete(name);
  }
  s.declared.delete(name);
  return Reflect.defineProperty(target, name, { value: stored, writable: true, enumerable: true, configurable: true });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object' || typeof v === 'function') return (v as object).constructor?.name ?? typeof v;
  return `${typeof v} ${JSON.stringify(v)}`;
}
