/** Accumulates an ONNX graph (nodes, initializers) as plain objects shaped like onnx.proto's messages. */
import { AttrType, DataType } from './proto';

/** An attribute value: an integer (INT), a list of integers (INTS) or `{ float }` (FLOAT). */
export type AttrValue = number | readonly number[] | { float: number };

export interface NodeProto {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Record<string, unknown>[];
}

export interface TensorProto {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

function attribute(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`internal: ONNX attribute ${name} = ${v} must be an integer (use { float })`);
    return { name, type: AttrType.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: [...v] };
  return { name, type: AttrType.FLOAT, f: (v as { float: number }).float };
}

/** Little-endian bytes of typed data (TensorProto.raw_data is little-endian; so is every host tsnn runs on). */
function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private used = new Set<string>();
  private int64Cache = new Map<string, string>();
  private scalarCache = new Map<number, string>();

  /** A value name not used yet, from a hint (`linear1.weight`, `Relu`). */
  fresh(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 'v';
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /** Adds a node with one output; returns that output's name. `scope` (a module path) prefixes its name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, scope = ''): string {
    const name = this.fresh(scope ? `${scope}/${opType}` : opType);
    const out = this.fresh(`${name}_out`);
    this.nodes.push({
      op_type: opType,
      name,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  floatInitializer(hint: string, shape: readonly number[], data: Float32Array): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims: [...shape], data_type: DataType.FLOAT, raw_data: bytesOf(data) });
    return name;
  }

  /** A 1-D int64 constant (shapes, axes, slice bounds), shared between nodes. */
  int64s(values: readonly number[]): string {
    const key = values.join(',');
    let name = this.int64Cache.get(key);
    if (!name) {
      name = this.fresh('const_i64');
      const data = BigInt64Array.from(values, (v) => BigInt(v));
      this.initializers.push({ name, dims: [values.length], data_type: DataType.INT64, raw_data: bytesOf(data) });
      this.int64Cache.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant (plain-number operands). */
  scalar(v: number): string {
    let name = this.scalarCache.get(v);
    if (!name) {
      name = this.floatInitializer('const', [], Float32Array.of(v));
      this.scalarCache.set(v, name);
    }
    return name;
  }

  /** Renames a value everywhere (graph outputs take the names the user asked for). */
  rename(from: string, to: string): void {
    for (const n of this.nodes) {
      n.input = n.input.map((x) => (x === from ? to : x));
      n.output = n.output.map((x) => (x === from ? to : x));
    }
  }

  producedByNode(name: string): boolean {
    return this.nodes.some((n) => n.output.includes(name));
  }
}
