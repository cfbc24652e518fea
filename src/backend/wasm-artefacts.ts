/**
 * The generated WebAssembly of webasm kernels, kept so that an equivalent kernel is not analysed and
 * generated again: gpu.js's analysis (parsing the source, inferring types) and its code generation are most of
 * a fresh process's first training step (bench/first-step.ts). Two levels:
 *
 * - in memory: bytes + the compiled WebAssembly.Module, per key (LRU, MEMORY_ENTRIES): an equivalent kernel
 *   (evicted from a backend's kernel cache and back, another Backend, a flat and a wide GL... ) instantiates
 *   the same module;
 * - on disk (Node, platform/kernel-store.ts): bytes + what the kernel class needs to run them (return type,
 *   component count, Math imports, memory size), so a second process skips analysis and codegen too. Node
 *   cannot serialise a compiled module, so a disk hit still compiles the bytes (V8's baseline compiler: fast).
 *
 * The key is everything the bytes depend on: the kernel's source, output and argument types and sizes,
 * constants, the settings gpu.js's FunctionBuilder reads, whether tsnn's codegen extensions are on (and
 * which), SIMD support and, on disk, a hash of gpu.js's version and the text of tsnn's codegen
 * (wasm-codegen.ts's generatorText: a changed codegen never reads old bytes). A kernel with user functions, kernel maps or dynamic sizes is not cached.
 *
 * What comes back from disk is data, never code to evaluate: the metadata is checked field by field (Math
 * import names must be Math's own functions), the bytes must compile and import / export exactly what a
 * kernel module of that metadata does; anything else is a miss, and the fresh artefact overwrites the entry.
 */
import { hashKey, kernelStore } from '../platform/kernel-store';

/** The runtime's WebAssembly (this project compiles without DOM typings, which declare it). */
const WA: any = (globalThis as any).WebAssembly;
/** A compiled WebAssembly.Module. */
export type WasmModule = object;

/** What a kernel module needs besides its bytes. */
export interface ArtefactMeta {
  returnType: string;
  componentCount: number;
  usesRandom: boolean;
  mathImports: string[];
  initial: number;
  maximum: number;
  /** wasm-codegen.ts statistics the generation added (replayed on a hit, so counts do not depend on caching) */
  stats: Record<string, number>;
}

export interface Artefact {
  meta: ArtefactMeta;
  bytes: Uint8Array;
  module: WasmModule;
}

/** Counters: kernels generated, and artefacts found in memory or on disk (tests assert on these). */
export const artefactStats = { generated: 0, memoryHits: 0, diskHits: 0, diskRejected: 0 };

/** Artefacts kept in memory (a module of a small kernel is a few KB of code). */
export const MEMORY_ENTRIES = 512;
const memory = new Map<string, Artefact>();

/** Drops the in-memory artefacts (tests: a "fresh process" within one). */
export function clearArtefactMemory(): void {
  memory.clear();
}

/**
 * The disk key of `key`: prefixed by a hash of the generator's code text (`generator()`, asked once per
 * process: there is one generator per process, so the in-memory keys leave it out).
 */
let generatorHash: string | null = null;
function diskKey(key: string, generator: () => string): string {
  return `${(generatorHash ??= hashKey(generator()))}|${key}`;
}

/** The artefact of `key`, from memory or else from the disk store, or null. */
export function findArtefact(key: string, simd: boolean, generator: () => string): Artefact | null {
  const m = memory.get(key);
  if (m) {
    memory.delete(key);
    memory.set(key, m);
    artefactStats.memoryHits++;
    return m;
  }
  const store = kernelStore();
  const payload = store?.get(diskKey(key, generator));
  if (!payload) return null;
  const a = decode(payload, simd);
  if (!a) {
    artefactStats.diskRejected++;
    return null;
  }
  artefactStats.diskHits++;
  remember(key, a);
  return a;
}

/** Keeps a freshly generated artefact in memory and on disk. */
export function storeArtefact(key: string, a: Artefact, generator: () => string): void {
  artefactStats.generated++;
  remember(key, a);
  kernelStore()?.put(diskKey(key, generator), encode(a));
}

function remember(key: string, a: Artefact): void {
  memory.set(key, a);
  while (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value as string);
}

/** Payload: u32 length of the metadata JSON, the JSON (UTF-8), the module bytes. */
function encode(a: Artefact): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(a.meta));
  const out = new Uint8Array(4 + json.length + a.bytes.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 4);
  out.set(a.bytes, 4 + json.length);
  return out;
}

const RETURN_TYPES: Record<string, number> = { Number: 1, Float: 1, Integer: 1, LiteralInteger: 1, 'Array(2)': 2, 'Array(3)': 3, 'Array(4)': 4 };
const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/** The artefact in a payload read back from disk, or null where anything about it is not what a kernel module is. */
export function decode(payload: Uint8Array, simd: boolean): Artefact | null {
  try {
    if (payload.length < 4) return null;
    const n = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
    if (4 + n > payload.length) return null;
    const meta = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(4, 4 + n)));
    if (!validMeta(meta)) return null;
    const bytes = payload.slice(4 + n);
    const module = new WA.Module(bytes);
    if (!expectedInterface(module, meta, simd)) return null;
    return { meta, bytes, module };
  } catch {
    return null;
  }
}

function validMeta(m: any): m is ArtefactMeta {
  if (!m || typeof m !== 'object') return false;
  if (typeof m.returnType !== 'string' || RETURN_TYPES[m.returnType] !== m.componentCount) return false;
  if (typeof m.usesRandom !== 'boolean') return false;
  if (!Array.isArray(m.mathImports) || !m.mathImports.every(isMathFunction)) return false;
  if (!isCount(m.initial) || !isCount(m.maximum) || m.initial < 1 || m.initial > m.maximum || m.maximum > 65536) return false;
  if (!m.stats || typeof m.stats !== 'object' || !Object.values(m.stats).every(isCount)) return false;
  return true;
}

function isMathFunction(name: unknown): boolean {
  return (
    typeof name === 'string' &&
    /^[a-z][a-z0-9]*$/.test(name) &&
    Object.prototype.hasOwnProperty.call(Math, name) &&
    typeof (Math as any)[name] === 'function'
  );
}

/** Imports env.memory and env.math_<name> for the metadata's names only; exports run (and run_simd with SIMD). */
function expectedInterface(module: WasmModule, meta: ArtefactMeta, simd: boolean): boolean {
  const allowed = new Set(['memory', ...meta.mathImports.map((n) => `math_${n}`)]);
  const imports: { module: string; name: string; kind: string }[] = WA.Module.imports(module);
  if (imports.length !== allowed.size || !imports.every((i) => i.module === 'env' && allowed.has(i.name))) return false;
  if (!imports.some((i) => i.name === 'memory' && i.kind === 'memory')) return false;
  const exports = new Set(WA.Module.exports(module).map((e: { name: string }) => e.name));
  return exports.has('run') && exports.has('run_simd') === simd;
}
