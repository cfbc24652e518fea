/**
 * The registration table: which properties of a Module class are sub-modules, parameters and buffers.
 *
 * Two writers fill it, with identical results:
 *  - the tsnn compiler transformer (transformer/) emits `static __tsnnFields = [...]` on the class and
 *    removes the decorators, so registration costs nothing at run time;
 *  - the runtime decorators (decorators.ts) record the same entries when code was compiled by plain tsc.
 * Module reads the merged table (base classes first) through `fieldsOf`.
 */
export type FieldKind = 'child' | 'param' | 'buffer';

export interface FieldEntry {
  name: string;
  kind: FieldKind;
  /** buffers only: included in stateDict (default true) */
  persistent?: boolean;
}

/** Static property written by the transformer: an array of FieldEntry in declaration order. */
export const STATIC_TABLE_KEY = '__tsnnFields';
/** Where the runtime decorators record entries (own property of the class constructor). */
export const RUNTIME_TABLE = Symbol.for('tsnn.runtimeFields');

type Ctor = { [STATIC_TABLE_KEY]?: FieldEntry[]; [RUNTIME_TABLE]?: FieldEntry[] } & Function;

const merged = new WeakMap<Function, Map<string, FieldEntry>>();

/** Key in a class's standard-decorator metadata (context.metadata) under which decorators record entries. */
export const METADATA_KEY = 'tsnn:fields';

// Standard decorators hand out context.metadata only where Symbol.metadata exists (not yet in Node 20).
(Symbol as any).metadata ??= Symbol.for('Symbol.metadata');

function ownEntries(ctor: Ctor): FieldEntry[] {
  const out: FieldEntry[] = [];
  const md = (ctor as any)[(Symbol as any).metadata];
  if (md && Object.prototype.hasOwnProperty.call(md, METADATA_KEY)) out.push(...md[METADATA_KEY]);
  if (Object.prototype.hasOwnProperty.call(ctor, STATIC_TABLE_KEY)) out.push(...(ctor[STATIC_TABLE_KEY] ?? []));
  if (Object.prototype.hasOwnProperty.call(ctor, RUNTIME_TABLE)) out.push(...(ctor[RUNTIME_TABLE] ?? []));
  return out;
}

/** The class's fields, base classes first, each name once (a subclass redeclaring a field wins). */
export function fieldsOf(ctor: Function): Map<string, FieldEntry> {
  const hit = merged.get(ctor);
  if (hit) return hit;
  const chain: Ctor[] = [];
  for (let c: any = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) chain.unshift(c);
  const table = new Map<string, FieldEntry>();
  for (const c of chain) for (const e of ownEntries(c)) table.set(e.name, e);
  merged.set(ctor, table);
  return table;
}

const declaring = new WeakMap<Function, Map<string, FieldEntry[]>>();

/**
 * The own entries (in declaration order) of the class that declares `name` — the most derived class in
 * `ctor`'s chain that has it — or undefined. Module uses it to register a class's fields in declaration
 * order even where they are assigned in another order (useDefineForClassFields: false).
 */
export function declaredWith(ctor: Function, name: string): FieldEntry[] | undefined {
  let byName = declaring.get(ctor);
  if (!byName) {
    byName = new Map();
    for (let c: any = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
      const own = ownEntries(c);
      for (const e of own) if (!byName.has(e.name)) byName.set(e.name, own);
    }
    declaring.set(ctor, byName);
  }
  return byName.get(name);
}

/** Standard decorators: record into the class's own metadata object. */
export function recordMetadata(metadata: object, entry: FieldEntry): void {
  const md = metadata as Record<string, FieldEntry[]>;
  if (!Object.prototype.hasOwnProperty.call(md, METADATA_KEY)) md[METADATA_KEY] = [];
  md[METADATA_KEY].push(entry);
}

/** Experimental decorators: record on the declaring class; invalidates the merged cache. */
export function recordField(ctor: Function, entry: FieldEntry): void {
  const c = ctor as Ctor;
  if (!Object.prototype.hasOwnProperty.call(c, RUNTIME_TABLE)) {
    Object.defineProperty(c, RUNTIME_TABLE, { value: [], enumerable: false, configurable: true });
  }
  const list = c[RUNTIME_TABLE]!;
  const at = list.findIndex((e) => e.name === entry.name);
  if (at >= 0) list[at] = entry;
  else list.push(entry);
  merged.delete(ctor);
  declaring.delete(ctor);
}
