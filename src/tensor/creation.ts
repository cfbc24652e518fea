/** Creating tensors: from JS data, constants, ranges and the seeded RNG. */
import { Tensor, NestedArray } from './tensor';
import { fmtShape, numelOf } from './shape';
import { resolveDevice } from '../backend/devices';
import type { DeviceSpec } from '../backend/device';
import { fillNormal, fillUniform, rngStats } from './random';
import { tracing } from '../backend/gpujs-backend';

export interface TensorOptions {
  requiresGrad?: boolean;
  device?: DeviceSpec;
}

type Data = NestedArray | Float32Array | Float64Array | Int32Array | Uint8Array | ArrayLike<number>;

/** Shape of nested arrays, rejecting ragged lists and non-numbers with the path of the offender. */
function inferShapeOf(data: unknown, path = ''): number[] {
  if (typeof data === 'number') return [];
  if (typeof data === 'boolean') return [];
  if (ArrayBuffer.isView(data)) return [(data as unknown as ArrayLike<number>).length];
  if (!Array.isArray(data)) throw new Error(`tensor: expected numbers or (nested) arrays of numbers, got ${data === null ? 'null' : typeof data} at data${path}`);
  if (data.length === 0) return [0];
  const inner = inferShapeOf(data[0], `${path}[0]`);
  for (let k = 1; k < data.length; k++) {
    const s = inferShapeOf(data[k], `${path}[${k}]`);
    if (s.length !== inner.length || s.some((d, i) => d !== inner[i])) {
      throw new Error(`tensor: ragged nested array: data${path}[${k}] has shape ${fmtShape(s)}, expected ${fmtShape(inner)} like data${path}[0]`);
    }
  }
  return [data.length, ...inner];
}

function flattenInto(data: unknown, out: Float32Array, at: { i: number }): void {
  if (typeof data === 'number' || typeof data === 'boolean') out[at.i++] = Number(data);
  else for (const v of Array.from(data as ArrayLike<unknown>)) flattenInto(v, out, at);
}

function make(values: Float32Array, shape: readonly number[], opts: TensorOptions = {}): Tensor {
  const t = Tensor.fromArray(values, shape, resolveDevice(opts.device));
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export function tensor(data: Data, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  const shape = opts.shape ?? inferShapeOf(data);
  const values = new Float32Array(numelOf(shape));
  if (ArrayBuffer.isView(data)) {
    const src = data as unknown as ArrayLike<number>;
    if (src.length !== values.length) throw new Error(`tensor: ${src.length} values do not fill shape ${fmtShape(shape)}`);
    values.set(src);
  } else {
    const at = { i: 0 };
    flattenInto(data, values, at);
    if (at.i !== values.length) throw new Error(`tensor: ${at.i} values do not fill shape ${fmtShape(shape)}`);
  }
  return make(values, shape, opts);
}

function checkShape(op: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`${op}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return [...shape];
}

export function full(shape: number[], value: number, opts?: TensorOptions): Tensor {
  const s = checkShape('full', shape);
  return make(new Float32Array(numelOf(s)).fill(value), s, opts);
}
export const zeros = (shape: number[], opts?: TensorOptions) => full(shape, 0, opts);
export const ones = (shape: number[], opts?: TensorOptions) => full(shape, 1, opts);
export const zerosLike = (t: Tensor, opts: TensorOptions = {}) => full(t.shape, 0, { device: t.device, ...opts });
export const onesLike = (t: Tensor, opts: TensorOptions = {}) => full(t.shape, 1, { device: t.device, ...opts });
export const fullLike = (t: Tensor, v: number, opts: TensorOptions = {}) => full(t.shape, v, { device: t.device, ...opts });

/** A tensor of fresh random numbers; a graph capture learns how to draw its like again (see KernelTracer.onRandom). */
function makeRandom(draw: () => Float32Array, shape: readonly number[], opts?: TensorOptions): Tensor {
  const before = rngStats.draws;
  const t = make(draw(), shape, opts);
  tracing.tracer?.onRandom?.(t.storage.buffer, draw, rngStats.draws - before);
  return t;
}

export function rand(shape: number[], opts?: TensorOptions): Tensor {
  const s = checkShape('rand', shape);
  return makeRandom(() => fillUniform(new Float32Array(numelOf(s))), s, opts);
}

export function randn(shape: number[], opts?: TensorOptions): Tensor {
  const s = checkShape('randn', shape);
  return makeRandom(() => fillNormal(new Float32Array(numelOf(s))), s, opts);
}

export function uniform(shape: number[], lo: number, hi: number, opts?: TensorOptions): Tensor {
  const s = checkShape('uniform', shape);
  return makeRandom(() => fillUniform(new Float32Array(numelOf(s)), lo, hi), s, opts);
}

/** arange(end) or arange(start, end, step), like torch.arange. */
export function arange(start: number, end?: number, step = 1, opts?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return make(Float32Array.from({ length: n }, (_, i) => start + i * step), [n], opts);
}

export function eye(n: number, m = n, opts?: TensorOptions): Tensor {
  const v = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) v[i * m + i] = 1;
  return make(v, [n, m], opts);
}
