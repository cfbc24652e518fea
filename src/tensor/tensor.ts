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
import * as ops from '../ops';

export type Scalar = number;
export type TensorLike = Tensor | number;
export type NestedArray = number | NestedArray[];

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
  gradFn: Node | null = null;
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
    return ops.isContiguousTensor(this);
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
    const t = ops.contiguous(this);
    const arr = backendFor(t.device).read(t.storage.buffer);
    const copy = arr.slice(t.offset, t.offset + t.numel());
    if (t !== this) t.dispose();
    return copy;
  }

  async data(): Promise<Float32Array> {
    if (this.isDisposed) throw new Error(`tensor of shape ${fmtShape(this.shape)} was disposed`);
    const t = ops.contiguous(this);
    try {
      const arr = await backendFor(t.device).readAsync(t.storage.buffer);
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
    const seed = grad ?? ops.onesLike(this);
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
    return ops.toDevice(this, resolveDevice(device));
  }

  // ---- op method forms (definitions live in src/ops) -----------------------------------------
  add(o: TensorLike): Tensor {
    return ops.add(this, o);
  }
  sub(o: TensorLike): Tensor {
    return ops.sub(this, o);
  }
  mul(o: TensorLike): Tensor {
    return ops.mul(this, o);
  }
  div(o: TensorLike): Tensor {
    return ops.div(this, o);
  }
  pow(o: TensorLike): Tensor {
    return ops.pow(this, o);
  }
  maximum(o: TensorLike): Tensor {
    return ops.maximum(this, o);
  }
  minimum(o: TensorLike): Tensor {
    return ops.minimum(this, o);
  }
  eq(o: TensorLike): Tensor {
    return ops.eq(this, o);
  }
  ne(o: TensorLike): Tensor {
    return ops.ne(this, o);
  }
  gt(o: TensorLike): Tensor {
    return ops.gt(this, o);
  }
  ge(o: TensorLike): Tensor {
    return ops.ge(this, o);
  }
  lt(o: TensorLike): Tensor {
    return ops.lt(this, o);
  }
  le(o: TensorLike): Tensor {
    return ops.le(this, o);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  rsqrt(): Tensor {
    return ops.rsqrt(this);
  }
  abs(): Tensor {
    return ops.abs(this);
  }
  square(): Tensor {
    return ops.square(this);
  }
  sin(): Tensor {
    return ops.sin(this);
  }
  cos(): Tensor {
    return ops.cos(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return ops.gelu(this, approximate);
  }
  sign(): Tensor {
    return ops.sign(this);
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return ops.clamp(this, min, max);
  }
  where(cond: Tensor, other: TensorLike): Tensor {
    return ops.where(cond, this, other);
  }
  matmul(o: Tensor): Tensor {
    return ops.matmul(this, o);
  }
  mm(o: Tensor): Tensor {
    return ops.matmul(this, o);
  }
  sum(dim?: number | number[], keepdim = false): Tensor {
    return ops.sum(this, dim, keepdim);
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return ops.mean(this, dim, keepdim);
  }
  var(dim?: number | number[], opts: { keepdim?: boolean; unbiased?: boolean } = {}): Tensor {
    return ops.variance(this, dim, opts);
  }
  max(dim?: number, keepdim = false): Tensor {
    return ops.max(this, dim, keepdim);
  }
  min(dim?: number, keepdim = false): Tensor {
    return ops.min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return ops.argmax(this, dim, keepdim);
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return ops.argmin(this, dim, keepdim);
  }
  softmax(dim = -1): Tensor {
    return ops.softmax(this, dim);
  }
  logSoftmax(dim = -1): Tensor {
    return ops.logSoftmax(this, dim);
  }
  reshape(...shape: (number | number[])[]): Tensor {
    return ops.reshape(this, flatArgs(shape));
  }
  view(...shape: (number | number[])[]): Tensor {
    return ops.view(this, flatArgs(shape));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return ops.flatten(this, startDim, endDim);
  }
  permute(...dims: (number | number[])[]): Tensor {
    return ops.permute(this, flatArgs(dims));
  }
  transpose(d0 = -2, d1 = -1): Tensor {
    return ops.transpose(this, d0, d1);
  }
  get T(): Tensor {
    return ops.permute(
      this,
      this.shape.map((_, i) => this.ndim - 1 - i),
    );
  }
  unsqueeze(dim: number): Tensor {
    return ops.unsqueeze(this, dim);
  }
  squeeze(dim?: number): Tensor {
    return ops.squeeze(this, dim);
  }
  expand(...shape: (number | number[])[]): Tensor {
    return ops.expand(this, flatArgs(shape));
  }
  slice(dim: number, start: number, end?: number, step = 1): Tensor {
    return ops.slice(this, dim, start, end, step);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return ops.narrow(this, dim, start, length);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return ops.indexSelect(this, dim, index);
  }
  gather(dim: number, index: Tensor): Tensor {
    return ops.gather(this, dim, index);
  }
  /** `x.cat(others, dim)` is `cat([x, ...others], dim)`; the method form the API contract lists (torch has only the function). */
  cat(others: Tensor[], dim = 0): Tensor {
    return ops.cat([this, ...others], dim);
  }
  /** `x.stack(others, dim)` is `stack([x, ...others], dim)`. */
  stack(others: Tensor[], dim = 0): Tensor {
    return ops.stack([this, ...others], dim);
  }
  contiguous(): Tensor {
    return ops.contiguous(this);
  }
  clone(): Tensor {
    return ops.clone(this);
  }
  // in place
  add_(o: TensorLike): this {
    return ops.inplace(this, 'add_', ops.add, o);
  }
  sub_(o: TensorLike): this {
    return ops.inplace(this, 'sub_', ops.sub, o);
  }
  mul_(o: TensorLike): this {
    return ops.inplace(this, 'mul_', ops.mul, o);
  }
  div_(o: TensorLike): this {
    return ops.inplace(this, 'div_', ops.div, o);
  }
  zero_(): this {
    return ops.fill_(this, 0);
  }
  fill_(v: number): this {
    return ops.fill_(this, v);
  }
  copy_(src: Tensor): this {
    return ops.copy_(this, src);
  }
}

function flatArgs(args: (number | number[])[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...args[0]] : (args as number[]);
}
