/** Containers: Sequential, ModuleList, ModuleDict. */
import { Module, childAdapters } from './module';
import { describeValue } from '../util/describe';
import type { Tensor } from '../tensor/tensor';

/** @tsnnLayer Sequential (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Sequential extends Module {
  constructor(...modules: (Module | Record<string, Module>)[]) {
    super();
    if (modules.length === 1 && isPlainObject(modules[0])) {
      for (const [name, m] of Object.entries(modules[0])) this.addModule(name, m);
    } else {
      modules.forEach((m, i) => {
        if (!(m instanceof Module)) {
          const alt = modules.length === 1 ? ' (or one object of named modules)' : '';
          throw new TypeError(`Sequential: argument ${i} must be a Module${alt}, got ${describeValue(m)}`);
        }
        this.addModule(String(i), m);
      });
    }
  }

  get length(): number {
    return this.namedChildrenAll().length;
  }

  /** The i-th layer (negative counts from the end). */
  at(i: number): Module {
    const kids = this.namedChildrenAll();
    const k = i < 0 ? kids.length + i : i;
    if (k < 0 || k >= kids.length) throw new Error(`Sequential: index ${i} out of range for ${kids.length} layers`);
    return kids[k][1];
  }

  append(m: Module): this {
    return this.addModule(String(this.length), m);
  }

  /** Typed Tensor -> Tensor so that `seq(x)` is a Tensor, not `any`. */
  forward(x: Tensor): Tensor {
    for (const [, m] of this.namedChildrenAll()) x = m(x);
    return x;
  }

  [Symbol.iterator](): Iterator<Module> {
    const modules = this.namedChildrenAll().map(([, m]) => m);
    return modules[Symbol.iterator]();
  }
}

function isPlainObject(x: unknown): x is Record<string, Module> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** A list of sub-modules, registered as `0`, `1`, ...; indexable like an array. */
export class ModuleList<M extends Module = Module> extends Module {
  [index: number]: M;

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  get length(): number {
    return this.namedChildrenAll().length;
  }

  append(m: M): this {
    return this.addModule(String(this.length), m);
  }

  extend(ms: Iterable<M>): this {
    for (const m of ms) this.append(m);
    return this;
  }

  at(i: number): M {
    return this[i < 0 ? this.length + i : i];
  }

  map<T>(fn: (m: M, i: number) => T): T[] {
    return [...this].map(fn);
  }

  forEach(fn: (m: M, i: number) => void): void {
    [...this].forEach(fn);
  }

  [Symbol.iterator](): Iterator<M> {
    return (this.namedChildrenAll().map(([, m]) => m) as M[])[Symbol.iterator]();
  }

  forward(): never {
    throw new Error('ModuleList has no forward: iterate over it and call its modules');
  }
}

/** A string-keyed dict of sub-modules. */
export class ModuleDict<M extends Module = Module> extends Module {
  constructor(modules: Record<string, M> = {}) {
    super();
    for (const [k, m] of Object.entries(modules)) this.set(k, m);
  }

  set(key: string, m: M): this {
    return this.addModule(key, m);
  }

  get(key: string): M | undefined {
    return this.namedChildrenAll().find(([k]) => k === key)?.[1] as M | undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  keys(): string[] {
    return this.namedChildrenAll().map(([k]) => k);
  }

  values(): M[] {
    return this.namedChildrenAll().map(([, m]) => m as M);
  }

  entries(): [string, M][] {
    return this.namedChildrenAll() as [string, M][];
  }

  forward(): never {
    throw new Error('ModuleDict has no forward: look up its modules and call them');
  }
}

// `@child layers = [new Linear(..), ...]` becomes a ModuleList, `@child heads = { a: ..., b: ... }` a ModuleDict
childAdapters.wrap = (owner, name, value) => {
  if (Array.isArray(value)) return new ModuleList(value);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return new ModuleDict(value as Record<string, Module>);
  if (value instanceof Map) return new ModuleDict(Object.fromEntries(value));
  throw new Error(`${owner.constructor.name}.${name}: @child expects a Module, an array or a record of Modules`);
};
