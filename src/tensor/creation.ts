/** Creating tensors: from JS data, constants, ranges and the seeded RNG. */
import { Tensor, NestedArray } from './tensor';
import { checkShape, fmtShape, numelOf } from './shape';
import { backendFor, resolveDevice } from '../backend/devices';
import { checkFits } from '../backend/limits';
import type { DeviceSpec } from '../backend/device';
import { fillNormal, fillUniform, rngStats } from './random';
import { tracing } from '../backend/gpujs-backend';

export interface TensorOptions {
  requiresGrad?: boolean;
  device?: DeviceSpec;
}

type Data = NestedArray | Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array | BigUint64Array | ArrayLike<number>;

/** Shape of nested arrays, rejecting ragged lists and non-numbers with the path of the offender. */
function inferShapeOf(data: unknown, path = ''): number[] {
  if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') return [];
  if (ArrayBuffer.isView(data)) return [(data as unknown as ArrayLike<number>).length];
  if (!Array.isArray(data))
    throw new Error(`tensor: expected numbers or (nested) arrays of numbers, got ${data === null ? 'null' : typeof data} at data${path}`);
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
  // bigint (and BigInt64Array elements) convert like other integers: to the nearest float32
  if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') out[at.i++] = Number(data);
  else for (const v of Array.from(data as ArrayLike<unknown>)) flattenInto(v, out, at);
}

/**
 * Resolves the device and checks that `shape` fits on it before `fill` allocates anything: an oversized
 * tensor is refused in microseconds (backend/limits.ts) rather than after gigabytes of allocation.
 */
function make(op: string, shape: readonly number[], opts: TensorOptions, fill: (n: number) => Float32Array): Tensor {
  const device = resolveDevice(opts.device);
  checkFits(op, shape, device, backendFor(device).limit);
  const t = Tensor.fromArray(fill(numelOf(shape)), shape, device, op);
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export function tensor(data: Data, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  const shape = opts.shape !== undefined ? checkShape('tensor', opts.shape) : inferShapeOf(data);
  return make('tensor', shape, opts, (n) => {
    const values = new Float32Array(n);
    if (ArrayBuffer.isView(data) && !(data instanceof BigInt64Array || data instanceof BigUint64Array)) {
      const src = data as unknown as ArrayLike<number>;
      if (src.length !== n) throw new Error(`tensor: ${src.length} values do not fill shape ${fmtShape(shape)}`);
      values.set(src);
    } else {
      const at = { i: 0 };
      flattenInto(data, values, at);
      if (at.i !== n) throw new Error(`tensor: ${at.i} values do not fill shape ${fmtShape(shape)}`);
    }
    return values;
  });
}

export function full(shape: number[], value: number, opts: TensorOptions = {}): Tensor {
  return make('full', checkShape('full', shape), opts, (n) => new Float32Array(n).fill(value));
}
export const zeros = (shape: number[], opts: TensorOptions = {}) => make('zeros', checkShape('zeros', shape), opts, (n) => new Float32Array(n));
export const ones = (shape: number[], opts: TensorOptions = {}) => make('ones', checkShape('ones', shape), opts, (n) => new Float32Array(n).fill(1));
export const zerosLike = (t: Tensor, opts: TensorOptions = {}) => full(t.shape, 0, { device: t.device, ...opts });
export const onesLike = (t: Tensor, opts: TensorOptions = {}) => full(t.shape, 1, { device: t.device, ...opts });
export const fullLike = (t: Tensor, v: number, opts: TensorOptions = {}) => full(t.shape, v, { device: t.device, ...opts });

/** A tensor of fresh random numbers; a graph capture learns how to draw its like again (see KernelTracer.onRandom). */
function makeRandom(op: string, shape: readonly number[], opts: TensorOptions, fill: (n: number) => Float32Array): Tensor {
  const before = rngStats.draws;
  const t = make(op, shape, opts, fill);
  const n = numelOf(shape);
  tracing.tracer?.onRandom?.(t.storage.buffer, () => fill(n), rngStats.draws - before);
  return t;
}

export function rand(shape: number[], opts: TensorOptions = {}): Tensor {
  return makeRandom('rand', checkShape('rand', shape), opts, (n) => fillUniform(new Float32Array(n)));
}

export function randn(shape: number[], opts: TensorOptions = {}): Tensor {
  return makeRandom('randn', checkShape('randn', shape), opts, (n) => fillNormal(new Float32Array(n)));
}

export function uniform(shape: number[], lo: number, hi: number, opts: TensorOptions = {}): Tensor {
  return makeRandom('uniform', checkShape('uniform', shape), opts, (n) => fillUniform(new Float32Array(n), lo, hi));
}

/** arange(end) or arange(start, end, step), like torch.arange. */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (![start, end, step].every(Number.isFinite))
    throw new Error(`arange: start, end and step must be finite numbers, got ${start}, ${end}, ${step}`);
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return make('arange', [n], opts, () => Float32Array.from({ length: n }, (_, i) => start + i * step));
}

export function eye(n: number, m = n, opts: TensorOptions = {}): Tensor {
  return make('eye', checkShape('eye', [n, m]), opts, (size) => {
    const v = new Float32Array(size);
    for (let i = 0; i < Math.min(n, m); i++) v[i * m + i] = 1;
    return v;
  });
}
