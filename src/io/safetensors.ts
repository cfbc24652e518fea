/**
 * safetensors reading and writing, byte-compatible with the reference implementation
 * (huggingface/safetensors, `safetensors/src/tensor.rs`, used by `safetensors.torch.save_file`).
 *
 * File layout: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON header, then the raw
 * little-endian tensor data, C order:
 *
 *     {"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},...}
 *
 * Writing does what the reference's `prepare` does: tensors are ordered by dtype descending in the
 * reference's `Dtype` enum order (its "alignment" order: U64, I64, F64, F32, U32, I32, BF16, F16,
 * U16, I16, I8, U8, BOOL), then by name (code point order, as Rust's `str` Ord); the header lists
 * `__metadata__` first (only when there is metadata) and then the tensors in that same order, as
 * compact JSON; the header is padded with spaces to a multiple of 8 bytes. tsnn writes
 * `__metadata__`'s own keys sorted (the reference uses a HashMap there, so its order is arbitrary
 * when there is more than one key).
 *
 * Reading validates as the reference's `read_metadata` + `Metadata::validate` do, and more:
 * file of at least 8 bytes; header length <= 100,000,000 and inside the file; header valid UTF-8,
 * starting with '{', valid JSON without duplicate keys (at any level); every tensor entry has a
 * known dtype, a shape of non-negative integers and two non-negative integer data_offsets;
 * `__metadata__` maps strings to strings; the offsets, sorted, tile the data section exactly (no
 * hole, no overlap); each tensor's byte size is numel x dtype size; and the file ends exactly where
 * the last tensor does. Every check runs before any tensor is created, so a truncated or corrupt
 * file never yields a partial result. Errors are `SafetensorsError`s naming the file and the tensor.
 *
 * Dtypes: reading converts F16, BF16, F64, I64, I32, I16, I8, U8, BOOL (and U16, U32, U64,
 * F8_E5M2, F8_E4M3) to float32, like `tensor.to(torch.float32)`. Writing is F32 unless
 * `{ dtypes: { 'bn.num_batches_tracked': 'I64' } }` asks otherwise (F16, BF16, F64 and the
 * integer/bool dtypes; integer dtypes refuse non-integer or out-of-range values).
 *
 * Tied weights: when two names of the state dict hold the same Tensor object, or tensors over the
 * same storage with the same shape, strides and offset, the data is written once, under the first
 * name (in the state dict's order), and the dropped name is recorded in `__metadata__` as
 * `"tsnn.alias.<dropped>": "<kept>"` (safetensors' `save_model` writes the same kind of entry as
 * `"<dropped>": "<kept>"`). Loading restores aliases: the dropped name maps to the very same Tensor
 * as the kept one. Loading also honours `save_model`'s plain `"<dropped>": "<kept>"` entries (a
 * metadata key that is not a tensor in the file, whose value is one). `{ restoreAliases: false }`
 * turns both off. Tensors that share storage but are different views are written as separate copies.
 */
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import { resolveDevice } from '../backend/devices';
import type { DeviceSpec } from '../backend/device';
import { DTYPES, KNOWN_UNSUPPORTED, SafetensorsDtype, decode, encodeInto, isDtype } from './dtypes';
import { JsonSyntaxError, JsonValue, parseJsonStrict } from './json-strict';
import { isUninitialized } from '../nn/parameter';
import { readRegularFile, readRegularFileAsync, readRegularPrefix, writeFileAtomic, writeFileAtomicAsync } from '../platform/files';

export type { SafetensorsDtype } from './dtypes';

/** The reference's cap on the header length (MAX_HEADER_SIZE). */
export const MAX_HEADER_SIZE = 100_000_000;
/** Metadata key prefix under which tsnn records a tied weight's dropped name. */
export const ALIAS_PREFIX = 'tsnn.alias.';

export interface SaveOptions {
  /** `__metadata__` entries (string to string). Keys starting with `tsnn.alias.` are reserved. */
  metadata?: Record<string, string>;
  /** Per-name dtype to write instead of F32, e.g. `{ 'bn.num_batches_tracked': 'I64' }`. */
  dtypes?: Record<string, SafetensorsDtype>;
}

export interface LoadOptions {
  /** Where loaded tensors live (default: the default device). */
  device?: DeviceSpec;
  /** Restore tied-weight aliases recorded in `__metadata__` (default true). */
  restoreAliases?: boolean;
}

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data section */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** `__metadata__`, without tsnn's alias entries (null when the file has none) */
  metadata: Record<string, string> | null;
  /** tensors stored in the file, in data order */
  tensors: Record<string, TensorInfo>;
  /** dropped name -> kept name, for tied weights (only what will be restored) */
  aliases: Record<string, string>;
  /** byte length of the JSON header (N) */
  headerLength: number;
}

export interface LoadResult extends SafetensorsHeader {
  /** every name, aliases included, sorted by name; an alias is the same Tensor as its kept name */
  stateDict: Record<string, Tensor>;
}

/** A safetensors file (or buffer) could not be read or written. `file` and `tensor` say where. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly tensor: string | null,
    readonly detail: string,
  ) {
    super(`safetensors: ${file}: ${tensor !== null ? `tensor ${JSON.stringify(tensor)}: ` : ''}${detail}`);
    this.name = 'SafetensorsError';
  }
}

// ---- helpers -----------------------------------------------------------------------------------

const encoder = new TextEncoder();

/** Code point order (Rust's `str` Ord, Python's `str` <), not JS's UTF-16 code unit order. */
export function compareNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    if (ca > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

function isWellFormed(s: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

/**
 * An empty object without a prototype: names come from files and callers, and on a plain object a name
 * such as `__proto__` would set its prototype instead of an entry, and `constructor` would read one.
 */
function dict<T>(): Record<string, T> {
  return Object.create(null);
}

function ownValue<T>(o: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

function sameView(a: Tensor, b: Tensor): boolean {
  if (a === b) return true;
  return (
    a.storage === b.storage &&
    a.offset === b.offset &&
    a.shape.length === b.shape.length &&
    a.shape.every((d, i) => d === b.shape[i]) &&
    a.strides.every((s, i) => s === b.strides[i])
  );
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// ---- writing -----------------------------------------------------------------------------------

interface WritePlan {
  /** tensors to write, in file order */
  entries: { name: string; tensor: Tensor; dtype: SafetensorsDtype; numel: number; begin: number; end: number }[];
  header: Uint8Array; // padded JSON
  total: number;
}

function planWrite(stateDict: Record<string, Tensor>, opts: SaveOptions, file: string): WritePlan {
  const err = (tensor: string | null, detail: string): never => {
    throw new SafetensorsError(file, tensor, detail);
  };
  if (stateDict === null || typeof stateDict !== 'object')
    err(null, `expected a state dict (an object of name -> Tensor), got ${stateDict === null ? 'null' : typeof stateDict}`);
  const names = Object.keys(stateDict);
  const dtypes = opts.dtypes ?? dict<SafetensorsDtype>();
  for (const [name, dt] of Object.entries(dtypes)) {
    if (!Object.prototype.hasOwnProperty.call(stateDict, name)) err(name, `options.dtypes names a tensor that is not in the state dict`);
    if (!isDtype(dt))
      err(
        name,
        `options.dtypes: unknown dtype ${JSON.stringify(dt)} (expected one of ${Object.keys(DTYPES)
          .filter((d) => DTYPES[d as SafetensorsDtype].writable)
          .join(', ')})`,
      );
    if (!DTYPES[dt].writable) err(name, `options.dtypes: tsnn cannot write dtype ${dt}`);
  }
  const metadata = dict<string>();
  if (opts.metadata !== undefined) {
    if (opts.metadata === null || typeof opts.metadata !== 'object') err(null, 'options.metadata must be an object of string -> string');
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') err(null, `options.metadata[${JSON.stringify(k)}] must be a string, got ${typeof v}`);
      if (k.startsWith(ALIAS_PREFIX))
        err(null, `options.metadata key ${JSON.stringify(k)}: keys starting with '${ALIAS_PREFIX}' are reserved for tied weights`);
      if (!isWellFormed(k) || !isWellFormed(v))
        err(null, `options.metadata[${JSON.stringify(k)}] has a lone UTF-16 surrogate and cannot be written as UTF-8`);
      metadata[k] = v;
    }
  }

  // tied weights: keep the first name, record the others as aliases
  const kept: { name: string; tensor: Tensor; dtype: SafetensorsDtype }[] = [];
  for (const name of names) {
    const t = stateDict[name];
    if (name === '__metadata__') err(name, `'__metadata__' is reserved by the format and cannot name a tensor`);
    if (!isWellFormed(name)) err(name, 'the name has a lone UTF-16 surrogate and cannot be written as UTF-8');
    if (!isTensor(t)) err(name, `expected a Tensor, got ${t === null ? 'null' : typeof t}`);
    if (isUninitialized(t)) err(name, 'is an uninitialized lazy parameter; run one forward pass first so the layer knows its size');
    if (t.isDisposed) err(name, `tensor of shape ${fmtShape(t.shape)} was disposed`);
    const twin = kept.find((k) => sameView(k.tensor, t));
    if (twin) {
      const mine = ownValue(dtypes, name);
      if (mine !== undefined && mine !== twin.dtype) {
        if (ownValue(dtypes, twin.name) === undefined) twin.dtype = mine;
        else
          err(
            name,
            `is tied to ${JSON.stringify(twin.name)} (same tensor) but options.dtypes gives them different dtypes (${mine} and ${twin.dtype})`,
          );
      }
      metadata[ALIAS_PREFIX + name] = twin.name;
      continue;
    }
    kept.push({ name, tensor: t, dtype: ownValue(dtypes, name) ?? 'F32' });
  }

  // the reference's order: dtype descending (enum order), then name
  kept.sort((a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareNames(a.name, b.name));

  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort(compareNames);
  if (metaKeys.length > 0 || opts.metadata !== undefined) {
    parts.push(`"__metadata__":{${metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  const entries: WritePlan['entries'] = [];
  for (const k of kept) {
    const numel = numelOf(k.tensor.shape);
    const n = numel * DTYPES[k.dtype].size;
    entries.push({ ...k, numel, begin: offset, end: offset + n });
    parts.push(`${JSON.stringify(k.name)}:{"dtype":"${k.dtype}","shape":[${k.tensor.shape.join(',')}],"data_offsets":[${offset},${offset + n}]}`);
    offset += n;
  }
  const json = encoder.encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_SIZE) err(null, `header would be ${padded} bytes, more than the format's limit of ${MAX_HEADER_SIZE}`);
  const header = new Uint8Array(padded).fill(0x20);
  header.set(json);
  return { entries, header, total: 8 + padded + offset };
}

function assemble(plan: WritePlan, values: Float32Array[], file: string): Uint8Array {
  const out = new Uint8Array(plan.total);
  new DataView(out.buffer).setBigUint64(0, BigInt(plan.header.length), true);
  out.set(plan.header, 8);
  const base = 8 + plan.header.length;
  plan.entries.forEach((e, i) => {
    const v = values[i];
    if (v.length !== e.numel) throw new SafetensorsError(file, e.name, `internal: read ${v.length} values for shape ${fmtShape(e.tensor.shape)}`);
    encodeInto(e.dtype, v, out.subarray(base + e.begin, base + e.end), (index, value, why) => {
      throw new SafetensorsError(file, e.name, `cannot be written as ${e.dtype}: element ${index} (${value}) ${why}`);
    });
  });
  return out;
}

/** The safetensors bytes of a state dict (synchronous: reads tensors with dataSync()). */
export function serialize(stateDict: Record<string, Tensor>, opts: SaveOptions = {}): Uint8Array {
  return serializeAs(stateDict, opts, '<serialize>');
}

function serializeAs(stateDict: Record<string, Tensor>, opts: SaveOptions, file: string): Uint8Array {
  const plan = planWrite(stateDict, opts, file);
  return assemble(
    plan,
    plan.entries.map((e) => readValues(e.name, file, () => e.tensor.dataSync())),
    file,
  );
}

function readValues(name: string, file: string, read: () => Float32Array): Float32Array {
  try {
    return read();
  } catch (e) {
    throw new SafetensorsError(file, name, `could not read the tensor's values: ${(e as Error).message}`);
  }
}

/** Like `serialize`, reading tensor data asynchronously (works on asynchronous backends). */
export async function serializeAsync(stateDict: Record<string, Tensor>, opts: SaveOptions = {}): Promise<Uint8Array> {
  return serializeAsyncAs(stateDict, opts, '<serialize>');
}

async function serializeAsyncAs(stateDict: Record<string, Tensor>, opts: SaveOptions, file: string): Promise<Uint8Array> {
  const plan = planWrite(stateDict, opts, file);
  const values: Float32Array[] = [];
  for (const e of plan.entries) {
    try {
      values.push(await e.tensor.data());
    } catch (err) {
      throw new SafetensorsError(file, e.name, `could not read the tensor's values: ${(err as Error).message}`);
    }
  }
  return assemble(plan, values, file);
}

/**
 * Writes a state dict as a safetensors file, atomically and durably (files.ts): a failed or killed
 * save never leaves a truncated file (nor, after the next save, a temporary one) behind.
 */
export function saveFile(stateDict: Record<string, Tensor>, path: string, opts: SaveOptions = {}): void {
  const bytes = serializeAs(stateDict, opts, path);
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw new SafetensorsError(path, null, `could not write the file: ${(e as Error).message}`);
  }
}

export async function saveFileAsync(stateDict: Record<string, Tensor>, path: string, opts: SaveOptions = {}): Promise<void> {
  const bytes = await serializeAsyncAs(stateDict, opts, path);
  try {
    await writeFileAtomicAsync(path, bytes);
  } catch (e) {
    throw new SafetensorsError(path, null, `could not write the file: ${(e as Error).message}`);
  }
}

// ---- reading -----------------------------------------------------------------------------------

function jsonKind(v: JsonValue): string {
  return v.kind === 'bool'
    ? 'a boolean'
    : v.kind === 'null'
      ? 'null'
      : v.kind === 'object'
        ? 'an object'
        : v.kind === 'array'
          ? 'an array'
          : `a ${v.kind}`;
}

/** A non-negative integer literal (serde's usize: no sign, fraction or exponent), as a safe integer. */
function usize(v: JsonValue, what: string, fail: (detail: string) => never): number {
  if (v.kind !== 'number' || !/^(0|[1-9][0-9]*)$/.test(v.text)) {
    fail(`${what} must be a non-negative integer, got ${v.kind === 'number' ? v.text : jsonKind(v)}`);
  }
  const x = Number((v as { text: string }).text);
  if (!Number.isSafeInteger(x)) fail(`${what} ${(v as { text: string }).text} is too large`);
  return x;
}

/**
 * Parses and validates the header of a safetensors file whose first bytes are `prefix` (at least
 * 8 + N of them, or the whole file) and whose total length is `fileLength`. Throws on any problem.
 */
/** The header length N from a file's first 8 bytes, checked against the cap and the file's length. */
function headerLength(head: Uint8Array, fileLength: number, file: string): number {
  const fail = (detail: string): never => {
    throw new SafetensorsError(file, null, detail);
  };
  if (fileLength < 8) fail(`file is ${fileLength} bytes, too small to hold the 8-byte header length (truncated or not a safetensors file)`);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_SIZE))
    fail(`header length ${n64} is larger than the limit of ${MAX_HEADER_SIZE} bytes (corrupt or not a safetensors file)`);
  const n = Number(n64);
  if (8 + n > fileLength) fail(`header length ${n} runs past the end of the file (file is ${fileLength} bytes; truncated?)`);
  return n;
}

function parseHeader(prefix: Uint8Array, fileLength: number, file: string, restoreAliases: boolean): SafetensorsHeader {
  const fail = (tensor: string | null, detail: string): never => {
    throw new SafetensorsError(file, tensor, detail);
  };
  const n = headerLength(prefix, fileLength, file);
  if (prefix.length < 8 + n) throw new Error('internal: header prefix too short');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(prefix.subarray(8, 8 + n));
  } catch {
    return fail(null, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail(null, `header must start with '{', found ${text.length ? JSON.stringify(text[0]) : 'nothing'}`);
  let root: JsonValue;
  try {
    root = parseJsonStrict(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) {
      return fail(e.topKey !== null && e.topKey !== '__metadata__' ? e.topKey : null, `header is not valid JSON: ${e.message}`);
    }
    throw e;
  }
  if (root.kind !== 'object') return fail(null, `header must be a JSON object, got ${jsonKind(root)}`);

  let metadata: Record<string, string> | null = null;
  const infos: { name: string; info: TensorInfo }[] = [];
  for (const [name, v] of root.entries) {
    if (name === '__metadata__') {
      if (v.kind === 'null') continue;
      if (v.kind !== 'object') fail(null, `__metadata__ must be an object of string -> string, got ${jsonKind(v)}`);
      metadata = dict<string>();
      for (const [k, mv] of (v as Extract<JsonValue, { kind: 'object' }>).entries) {
        if (mv.kind !== 'string') fail(null, `__metadata__[${JSON.stringify(k)}] must be a string, got ${jsonKind(mv)}`);
        metadata[k] = (mv as { value: string }).value;
      }
      continue;
    }
    const bad = (detail: string): never => fail(name, detail);
    if (v.kind !== 'object') bad(`header entry must be an object with dtype, shape and data_offsets, got ${jsonKind(v)}`);
    const m = (v as Extract<JsonValue, { kind: 'object' }>).map;
    const dt = m.get('dtype');
    const shape = m.get('shape');
    const offs = m.get('data_offsets');
    if (!dt) bad('header entry has no "dtype"');
    if (!shape) bad('header entry has no "shape"');
    if (!offs) bad('header entry has no "data_offsets"');
    if (dt!.kind !== 'string') bad(`"dtype" must be a string, got ${jsonKind(dt!)}`);
    const dtype = (dt as { value: string }).value;
    if (!isDtype(dtype)) {
      if (KNOWN_UNSUPPORTED.has(dtype)) bad(`dtype ${dtype} is not supported by tsnn`);
      bad(`unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    }
    if (shape!.kind !== 'array') bad(`"shape" must be an array of non-negative integers, got ${jsonKind(shape!)}`);
    const dims = (shape as Extract<JsonValue, { kind: 'array' }>).items.map((d, i) => usize(d, `shape[${i}]`, bad));
    if (offs!.kind !== 'array' || (offs as Extract<JsonValue, { kind: 'array' }>).items.length !== 2) {
      bad(
        `"data_offsets" must be an array of two non-negative integers [begin, end], got ${offs!.kind === 'array' ? `${(offs as Extract<JsonValue, { kind: 'array' }>).items.length} elements` : jsonKind(offs!)}`,
      );
    }
    const [b, e] = (offs as Extract<JsonValue, { kind: 'array' }>).items.map((d, i) => usize(d, `data_offsets[${i}]`, bad));
    infos.push({ name, info: { dtype: dtype as SafetensorsDtype, shape: dims, dataOffsets: [b, e] } });
  }

  // offsets, sorted, must tile the data section exactly; each size must match shape x dtype
  const sorted = [...infos].sort((x, y) => x.info.dataOffsets[0] - y.info.dataOffsets[0] || x.info.dataOffsets[1] - y.info.dataOffsets[1]);
  let pos = 0;
  let prev: { name: string; info: TensorInfo } | null = null;
  for (const t of sorted) {
    const [b, e] = t.info.dataOffsets;
    if (e < b) fail(t.name, `data_offsets [${b}, ${e}] end before they begin`);
    if (b < pos) {
      fail(
        t.name,
        `data_offsets [${b}, ${e}] overlap ${prev ? `tensor ${JSON.stringify(prev.name)} at [${prev.info.dataOffsets[0]}, ${prev.info.dataOffsets[1]}]` : 'another tensor'}`,
      );
    }
    if (b > pos) {
      fail(t.name, `data_offsets [${b}, ${e}] leave a hole: bytes ${pos}..${b} of the data section belong to no tensor`);
    }
    let numel = 1n;
    for (const d of t.info.shape) numel *= BigInt(d);
    const want = numel * BigInt(DTYPES[t.info.dtype].size);
    if (want !== BigInt(e - b)) {
      fail(t.name, `shape ${fmtShape(t.info.shape)} of dtype ${t.info.dtype} needs ${want} bytes, but data_offsets [${b}, ${e}] span ${e - b}`);
    }
    pos = e;
    prev = t;
  }
  const dataLen = fileLength - 8 - n;
  if (pos > dataLen) {
    const cut = sorted.find((t) => t.info.dataOffsets[1] > dataLen)!;
    fail(
      cut.name,
      `file is truncated: data_offsets [${cut.info.dataOffsets[0]}, ${cut.info.dataOffsets[1]}] run past the end of the data section (${dataLen} bytes; the header says ${pos})`,
    );
  }
  if (pos < dataLen)
    fail(null, `${dataLen - pos} trailing bytes after the last tensor (the data section should be ${pos} bytes, the file has ${dataLen})`);

  // aliases
  const stored = new Set(infos.map((t) => t.name));
  const aliases = dict<string>();
  let userMeta: Record<string, string> | null = metadata;
  if (metadata) {
    userMeta = dict<string>();
    for (const [k, v] of Object.entries(metadata)) {
      if (k.startsWith(ALIAS_PREFIX)) {
        const dropped = k.slice(ALIAS_PREFIX.length);
        if (dropped === '' || dropped === '__metadata__') fail(null, `__metadata__ key ${JSON.stringify(k)} is not a valid alias`);
        if (!stored.has(v)) fail(dropped, `__metadata__ records it as an alias of ${JSON.stringify(v)}, which is not in the file`);
        if (stored.has(dropped)) fail(dropped, `__metadata__ records it as an alias of ${JSON.stringify(v)}, but it is also stored in the file`);
        if (restoreAliases) aliases[dropped] = v;
      } else {
        userMeta[k] = v;
      }
    }
    if (restoreAliases) {
      // safetensors' save_model writes {"<dropped>": "<kept>"}
      for (const [k, v] of Object.entries(userMeta)) {
        if (!stored.has(k) && stored.has(v) && !(k in aliases)) aliases[k] = v;
      }
    }
  }

  const tensors = dict<TensorInfo>();
  for (const t of sorted) tensors[t.name] = t.info;
  return { metadata: userMeta, tensors, aliases, headerLength: n };
}

function build(bytes: Uint8Array, opts: LoadOptions, file: string): LoadResult {
  const header = parseHeader(bytes, bytes.length, file, opts.restoreAliases ?? true);
  const device = resolveDevice(opts.device);
  const base = 8 + header.headerLength;
  // convert everything first, then upload; dispose what was made if anything fails
  const names = Object.keys(header.tensors);
  const values = names.map((name) => {
    const info = header.tensors[name];
    const [b, e] = info.dataOffsets;
    return decode(info.dtype, bytes.subarray(base + b, base + e), numelOf(info.shape));
  });
  const made = new Map<string, Tensor>();
  try {
    names.forEach((name, i) => made.set(name, Tensor.fromArray(values[i], header.tensors[name].shape, device)));
  } catch (e) {
    for (const t of made.values()) t.dispose();
    throw new SafetensorsError(file, null, `could not create tensors on device '${device}': ${(e as Error).message}`);
  }
  for (const [dropped, kept] of Object.entries(header.aliases)) made.set(dropped, made.get(kept)!);
  const stateDict = dict<Tensor>();
  for (const name of [...made.keys()].sort(compareNames)) stateDict[name] = made.get(name)!;
  return { ...header, stateDict };
}

/** Tensors from safetensors bytes, keyed by name (sorted). `source` names the bytes in errors. */
export function deserialize(bytes: Uint8Array | ArrayBuffer, opts: LoadOptions & { source?: string } = {}): Record<string, Tensor> {
  return build(asBytes(bytes), opts, opts.source ?? '<bytes>').stateDict;
}

/** Like `deserialize`, also returning the metadata, the stored tensors' dtypes/shapes and the aliases. */
export function deserializeWithMetadata(bytes: Uint8Array | ArrayBuffer, opts: LoadOptions & { source?: string } = {}): LoadResult {
  return build(asBytes(bytes), opts, opts.source ?? '<bytes>');
}

function asBytes(b: Uint8Array | ArrayBuffer): Uint8Array {
  return b instanceof Uint8Array ? b : new Uint8Array(b);
}

/** A file's bytes; a non-regular file or a bad header length is refused before the rest is read. */
function readAll(path: string): Uint8Array {
  try {
    return readRegularFile(path, (head, size) => headerLength(head, size, path));
  } catch (e) {
    throw e instanceof SafetensorsError ? e : new SafetensorsError(path, null, `could not read the file: ${(e as Error).message}`);
  }
}

/** Loads a safetensors file as a state dict (name -> float32 Tensor), validating it fully first. */
export function loadFile(path: string, opts: LoadOptions = {}): Record<string, Tensor> {
  return build(readAll(path), opts, path).stateDict;
}

/** Like `loadFile`, also returning metadata, stored dtypes/shapes and aliases. */
export function loadFileWithMetadata(path: string, opts: LoadOptions = {}): LoadResult {
  return build(readAll(path), opts, path);
}

export async function loadFileAsync(path: string, opts: LoadOptions = {}): Promise<Record<string, Tensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFileAsync(path, (head, size) => headerLength(head, size, path));
  } catch (e) {
    throw e instanceof SafetensorsError ? e : new SafetensorsError(path, null, `could not read the file: ${(e as Error).message}`);
  }
  return build(bytes, opts, path).stateDict;
}

/**
 * Reads and validates only the header of a file (dtypes, shapes, offsets, metadata, aliases)
 * without reading the tensor data; the file size is still checked against the offsets.
 */
export function readHeader(path: string): SafetensorsHeader {
  let result: SafetensorsHeader | null = null;
  let opened = false;
  try {
    readRegularPrefix(path, (read, size) => {
      opened = true;
      const head = read(8);
      let n = 0;
      if (size >= 8) {
        const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
        n = n64 <= BigInt(MAX_HEADER_SIZE) ? Math.min(Number(n64), size - 8) : 0;
      }
      result = parseHeader(read(8 + n), size, path, true);
    });
  } catch (e) {
    if (opened || e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(path, null, `could not read the file: ${(e as Error).message}`);
  }
  return result!;
}

/**
 * Fetches safetensors bytes from `url` (fetch: browsers, Node 18+) and loads them as a state dict, validated
 * like loadFile (a fetch with other options: `deserialize(new Uint8Array(await res.arrayBuffer()))`). A failed request (network error, HTTP status other than 2xx) is a SafetensorsError naming the URL.
 */
export async function loadUrl(url: string, opts: LoadOptions = {}): Promise<Record<string, Tensor>> {
  const source = String(url);
  let bytes: Uint8Array;
  try {
    // the global fetch (typed loosely: the declarations must not need the DOM or Node types)
    const res = await (globalThis as any).fetch(source);
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw new SafetensorsError(source, null, `could not fetch: ${(e as Error).message}`);
  }
  return build(bytes, opts, source).stateDict;
}
