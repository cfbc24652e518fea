/**
 * The Tensor: a strided view (shape, strides, offset) over a Storage on one device, plus its
 * autograd state. Every computation is an op in src/ops; the methods here are their method forms.
 */
import { Storage } from './storage';
import { contiguousStrides, fmtShape, numelOf, Shape } from './shape';
import { track, Disposable } from './scope';
import type { DeviceName, DeviceSpec } from '../backend/device';
import type { DeviceBuffer } from '../backend/gpujs-backend';
import { backendFor, resolveDevice } from '../backend/devices';
import type { Node } from '../autograd/node';
import { backward as runBackward, BackwardOptions } from '../autograd/backward';

export type Scalar = number;
export type TensorLike = Tensor | number;
export type NestedArray = number | NestedArray[];

type UnaryOp = (x: Tensor) => Tensor;
type BinaryOp = (a: Tensor, b: TensorLike) => Tensor;
type DimsOp = (x: Tensor, dim?: number | number[], keepdim?: boolean) => Tensor;
type DimOp = (x: Tensor, dim?: number, keepdim?: boolean) => Tensor;

/**
 * The ops behind Tensor's methods. The ops make tensors, so src/ops imports this module; importing src/ops
 * back would be an import circle, so src/ops/index.ts hands its ops over (bindTensorOps) when it loads.
 */
export type TensorOps = Record<'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum' | 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le', BinaryOp> &
  Record<
    | 'neg'
    | 'exp'
    | 'log'
    | 'sqrt'
    | 'rsqrt'
    | 'abs'
    | 'square'
    | 'sin'
    | 'cos'
    | 'relu'
    | 'sigmoid'
    | 'tanh'
    | 'sign'
    | 'contiguous'
    | 'clone'
    | 'onesLike',
    UnaryOp
  > &
  Record<'sum' | 'mean', DimsOp> &
  Record<'max' | 'min' | 'argmax' | 'argmin', DimOp> &
  Record<'softmax' | 'logSoftmax', (x: Tensor, dim?: number) => Tensor> &
  Record<'reshape' | 'view' | 'permute' | 'expand', (x: Tensor, shape: number[]) => Tensor> &
  Record<'cat' | 'stack', (xs: Tensor[], dim?: number) => Tensor> &
  Record<'indexSelect' | 'gather', (x: Tensor, dim: number, index: Tensor) => Tensor> & {
    isContiguousTensor: (t: Tensor) => boolean;
    toDevice: (x: Tensor, device: DeviceName) => Tensor;
    gelu: (x: Tensor, approximate?: 'none' | 'tanh') => Tensor;
    clamp: (x: Tensor, min?: number | null, max?: number | null) => Tensor;
    where: (cond: Tensor, a: TensorLike, b: TensorLike) => Tensor;
    matmul: (a: Tensor, b: Tensor) => Tensor;
    variance: (x: Tensor, dim?: number | number[], opts?: { keepdim?: boolean; unbiased?: boolean }) => Tensor;
    flatten: (x: Tensor, startDim?: number, endDim?: number) => Tensor;
    transpose: (x: Tensor, d0?: number, d1?: number) => Tensor;
    unsqueeze: (x: Tensor, dim: number) => Tensor;
    squeeze: (x: Tensor, dim?: number) => Tensor;
    slice: (x: Tensor, dim: number, start: number, end?: number, step?: number) => Tensor;
    narrow: (x: Tensor, dim: number, start: number, length: number) => Tensor;
    inplace: <T extends Tensor>(x: T, name: string, fn: BinaryOp, o: TensorLike) => T;
    fill_: <T extends Tensor>(x: T, v: number) => T;
    copy_: <T extends Tensor>(x: T, src: Tensor) => T;
  };

let ops: TensorOps | null = null;
/** Called once by src/ops/index.ts. */
export function bindTensorOps(impl: TensorOps): void {
  ops = impl;
}
/** The bound ops; every entry point (src/index.ts) loads src/ops, so this fails only for a partial deep import. */
function op(): TensorOps {
  if (!ops) throw new Error('tsnn: tensor ops are not loaded; import tsnn (or src/ops) before calling Tensor methods');
  return ops;
}

// `using t = ...` (TypeScript 5.2+ explicit resource management) disposes a tensor at the end of its scope.
// The augmentation lets projects without lib "esnext.disposable" compile our declarations; the runtime
// symbol is Node's own (Symbol.for('nodejs.dispose')) where a runtime lacks Symbol.dispose.
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}
(Symbol as { dispose?: symbol }).dispose ??= Symbol.for('nodejs.dispose');

/** @tsnnTensor */
export class Tensor implements Disposable {
  /** lets runtime checks recognise Tensor classes without importing this module */
  static readonly __tsnnIsTensor = true;
  readonly shape: number[];
  readonly strides: number[];
  readonly offset: number;
  requiresGrad = false;
  private gradValue: Tensor | null = null;
  gradFn: Node<Tensor> | null = null;
  private disposed = false;

  constructor(
    readonly storage: Storage,
    shape: Shape,
    strides?: readonly number[],
    offset = 0,
  ) {
    this.shape = [...shape];
    this.strides = strides ? [...strides] : contiguousStrides(shape);
    this.offset = offset;
    storage.hold();
    track(this);
  }

  /** A new contiguous tensor over a freshly computed buffer. */
  static fromBuffer(buf: DeviceBuffer, shape: Shape): Tensor {
    return new Tensor(new Storage(buf), shape);
  }

  static fromArray(data: Float32Array, shape: Shape, device: DeviceName, op = 'tensor'): Tensor {
    if (data.length !== numelOf(shape)) throw new Error(`${op}: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    return Tensor.fromBuffer(backendFor(device).upload(data, op), shape);
  }

  /**
   * The accumulated gradient. Replacing or clearing it (zeroGrad, the next accumulation, to(device))
   * frees the previous gradient's device memory right away: a training loop must not grow.
   */
  get grad(): Tensor | null {
    return this.gradValue;
  }
  set grad(g: Tensor | null) {
    const old = this.gradValue;
    this.gradValue = g;
    if (old && old !== g) old.dispose();
  }

  get device(): DeviceName {
    return this.storage.device;
  }
  get ndim(): number {
    return this.shape.length;
  }
  numel(): number {
    return numelOf(this.shape);
  }
  get isLeaf(): boolean {
    return this.gradFn === null;
  }
  get isDisposed(): boolean {
    return this.disposed;
  }
  get isContiguous(): boolean {
    return op().isContiguousTensor(this);
  }

  /** `using x = tensor(...)`: disposed when the block ends. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Frees this tensor's hold on device memory now. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.drop();
  }

  // ---- reading -------------------------------------------------------------------------------
  /** Contiguous row-major values (synchronous; throws on asynchronous backends). */
  dataSync(): Float32Array {
    if (this.isDisposed) throw new Error(`tensor of shape ${fmtShape(this.shape)} was disposed`);
    const t = op().contiguous(this);
    const arr = backendFor(t.device).read(t.storage.buffer);
    const copy = arr.slice(t.offset, t.offset + t.numel());
    if (t !== this) t.dispose();
    return copy;
  }

  async data(): Promise<Float32Array> {
    if (this.isDisposed) throw new Error(`tensor of shape ${fmtShape(this.shape)} was disposed`);
    const t = op().contiguous(this);
    try {
      const backend = backendFor(t.device);
      // a host array is copied before this yields: disposed meanwhile, it may be reused for another output (out-pool.ts)
      if (!backend.resident) return backend.read(t.storage.buffer).slice(t.offset, t.offset + t.numel());
      const arr = await backend.readAsync(t.storage.buffer);
      return arr.slice(t.offset, t.offset + t.numel());
    } finally {
      if (t !== this) t.dispose();
    }
  }

  /** The single value of a one-element tensor. `{ nanCheck: true }` throws on NaN/Infinity. */
  item(opts: { nanCheck?: boolean } = {}): number {
    if (this.numel() !== 1) throw new Error(`item(): tensor of shape ${fmtShape(this.shape)} has ${this.numel()} elements, expected 1`);
    const v = this.dataSync()[0];
    if (opts.nanCheck && !Number.isFinite(v)) throw new Error(`item(): value is ${v}`);
    return v;
  }

  /** Nested JS arrays (a number for a 0-d tensor), like PyTorch's tolist(). */
  toArray(): NestedArray {
    const flat = this.dataSync();
    const build = (dim: number, off: number): NestedArray => {
      if (dim === this.shape.length) return flat[off];
      const step = numelOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, k) => build(dim + 1, off + k * step));
    };
    return build(0, 0);
  }

  toString(): string {
    const n = this.numel();
    const vals = n <= 20 && !this.isDisposed ? ` ${JSON.stringify(this.toArray())}` : '';
    const grad = this.gradFn ? `, gradFn=${this.gradFn.name}` : this.requiresGrad ? ', requiresGrad=true' : '';
    return `tensor(shape=${fmtShape(this.shape)}, device=${this.device}${grad})${vals}`;
  }

  // ---- autograd --------------------------------------------------------------------------------
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    if (!grad && this.numel() !== 1) {
      throw new Error(`backward(): grad can be implicitly created only for one-element outputs, got shape ${fmtShape(this.shape)}`);
    }
    const seed = grad ?? op().onesLike(this);
    try {
      runBackward(this, seed, opts);
    } finally {
      if (seed !== grad) seed.dispose(); // ours: every use (and any copy kept as .grad) is done
    }
  }

  /** Same data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, this.strides, this.offset);
  }

  requiresGrad_(on = true): this {
    if (!this.isLeaf && !on) throw new Error('requiresGrad_(false): only leaf tensors can stop requiring grad; use detach()');
    this.requiresGrad = on;
    return this;
  }

  // ---- devices -------------------------------------------------------------------------------
  to(device: DeviceSpec): Tensor {
    return op().toDevice(this, resolveDevice(device));
  }

  // ---- op method forms (definitions live in src/ops) -----------------------------------------
  add(o: TensorLike): Tensor {
    return op().add(this, o);
  }
  sub(o: TensorLike): Tensor {
    return op().sub(this, o);
  }
  mul(o: TensorLike): Tensor {
    return op().mul(this, o);
  }
  div(o: TensorLike): Tensor {
    return op().div(this, o);
  }
  pow(o: TensorLike): Tensor {
    return op().pow(this, o);
  }
  maximum(o: TensorLike): Tensor {
    return op().maximum(this, o);
  }
  minimum(o: TensorLike): Tensor {
    return op().minimum(this, o);
  }
  eq(o: TensorLike): Tensor {
    return op().eq(this, o);
  }
  ne(o: TensorLike): Tensor {
    return op().ne(this, o);
  }
  gt(o: TensorLike): Tensor {
    return op().gt(this, o);
  }
  ge(o: TensorLike): Tensor {
    return op().ge(this, o);
  }
  lt(o: TensorLike): Tensor {
    return op().lt(this, o);
  }
  le(o: TensorLike): Tensor {
    return op().le(this, o);
  }
  neg(): Tensor {
    return op().neg(this);
  }
  exp(): Tensor {
    return op().exp(this);
  }
  log(): Tensor {
    return op().log(this);
  }
  sqrt(): Tensor {
    return op().sqrt(this);
  }
  rsqrt(): Tensor {
    return op().rsqrt(this);
  }
  abs(): Tensor {
    return op().abs(this);
  }
  square(): Tensor {
    return op().square(this);
  }
  sin(): Tensor {
    return op().sin(this);
  }
  cos(): Tensor {
    return op().cos(this);
  }
  relu(): Tensor {
    return op().relu(this);
  }
  sigmoid(): Tensor {
    return op().sigmoid(this);
  }
  tanh(): Tensor {
    return op().tanh(this);
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return op().gelu(this, approximate);
  }
  sign(): Tensor {
    return op().sign(this);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return op().clamp(this, min, max);
  }
  where(cond: Tensor, other: TensorLike): Tensor {
    return op().where(cond, this, other);
  }
  matmul(o: Tensor): Tensor {
    return op().matmul(this, o);
  }
  mm(o: Tensor): Tensor {
    return op().matmul(this, o);
  }
  sum(dim?: number | number[], keepdim = false): Tensor {
    return op().sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return op().mean(this, dim, keepdim);
  }
  var(dim?: number | number[], opts: { keepdim?: boolean; unbiased?: boolean } = {}): Tensor {
    return op().variance(this, dim, opts);
  }
  max(dim?: number, keepdim = false): Tensor {
    return op().max(this, dim, keepdim);
  }
  min(dim?: number, keepdim = false): Tensor {
    return op().min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return op().argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return op().argmin(this, dim, keepdim);
  }
  softmax(dim = -1): Tensor {
    return op().softmax(this, dim);
  }
  logSoftmax(dim = -1): Tensor {
    return op().logSoftmax(this, dim);
  }
  reshape(...shape: (number | number[])[]): Tensor {
    return op().reshape(this, flatArgs(shape));
  }
  view(...shape: (number | number[])[]): Tensor {
    return op().view(this, flatArgs(shape));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return op().flatten(this, startDim, endDim);
  }
  permute(...dims: (number | number[])[]): Tensor {
    return op().permute(this, flatArgs(dims));
  }
  transpose(d0 = -2, d1 = -1): Tensor {
    return op().transpose(this, d0, d1);
  }
  get T(): Tensor {
    return op().permute(
      this,
      this.shape.map((_, i) => this.ndim - 1 - i),
    );
  }
  unsqueeze(dim: number): Tensor {
    return op().unsqueeze(this, dim);
  }
  squeeze(dim?: number): Tensor {
    return op().squeeze(this, dim);
  }
  expand(...shape: (number | number[])[]): Tensor {
    return op().expand(this, flatArgs(shape));
  }
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return op().slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return op().narrow(this, dim, start, length);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return op().indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return op().gather(this, dim, index);
  }
  /** `x.cat(others, dim)` is `cat([x, ...others], dim)`; the method form the API contract lists (torch has only the function). */
  cat(others: Tensor[], dim = 0): Tensor {
    return op().cat([this, ...others], dim);
  }
  /** `x.stack(others, dim)` is `stack([x, ...others], dim)`. */
  stack(others: Tensor[], dim = 0): Tensor {
    return op().stack([this, ...others], dim);
  }
  contiguous(): Tensor {
    return op().contiguous(this);
  }
  clone(): Tensor {
    return op().clone(this);
  }
  // in place
  add_(o: TensorLike): this {
    return op().inplace(this, 'add_', op().add, o);
  }
  sub_(o: TensorLike): this {
    return op().inplace(this, 'sub_', op().sub, o);
  }
  mul_(o: TensorLike): this {
    return op().inplace(this, 'mul_', op().mul, o);
  }
  div_(o: TensorLike): this {
    return op().inplace(this, 'div_', op().div, o);
  }
  zero_(): this {
    return op().fill_(this, 0);
  }
  fill_(v: number): this {
    return op().fill_(this, v);
  }
  copy_(src: Tensor): this {
    return op().copy_(this, src);
  }
}

function flatArgs(args: (number | number[])[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...args[0]] : (args as number[]);
}
