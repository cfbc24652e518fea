/** Shape arithmetic shared by tensors, ops and kernels. Pure functions, no device knowledge. */
export type Shape = readonly number[];

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A shape given by a user: an array of non-negative integers; throws naming the op and the bad dim. */
export function checkShape(op: string, shape: unknown): number[] {
  if (!Array.isArray(shape))
    throw new TypeError(`${op}: shape must be an array of non-negative integers, got ${shape === null ? 'null' : typeof shape}`);
  shape.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new TypeError(
        `${op}: shape must be an array of non-negative integers, got ${typeof d === 'string' ? `'${d}'` : String(d)} at dim ${i} of ${JSON.stringify(shape)}`,
      );
    }
  });
  return [...shape];
}

export function contiguousStrides(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** NumPy broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together (dim ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalises a possibly negative dim against ndim, throwing with the op's name when out of range. */
export function normDim(op: string, dim: number, ndim: number): number {
  // a 0-d tensor takes dim 0 and -1, as in PyTorch
  const n = Math.max(ndim, 1);
  const d = dim < 0 ? dim + n : dim;
  if (!Number.isInteger(d) || d < 0 || d >= n) {
    throw new Error(`${op}: dim ${dim} out of range for a tensor of ${ndim} dims`);
  }
  return d;
}

export function normDims(op: string, dims: number | readonly number[] | undefined, ndim: number): number[] {
  if (dims === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : [...dims];
  const out = list.map((d) => normDim(op, d, ndim));
  if (new Set(out).size !== out.length) throw new Error(`${op}: dims ${fmtShape(list)} repeat a dimension`);
  return out.sort((x, y) => x - y);
}

/** Resolves a single -1 in a reshape target. */
export function inferShape(op: string, from: Shape, to: readonly number[]): number[] {
  const n = numelOf(from);
  const free = to.filter((d) => d === -1).length;
  if (free > 1) throw new Error(`${op}: only one dimension can be -1, got ${fmtShape(to)}`);
  const known = to.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const out = to.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (out.some((d) => !Number.isInteger(d) || d < 0) || numelOf(out) !== n) {
    throw new Error(`${op}: cannot reshape tensor of shape ${fmtShape(from)} (${n} elements) into ${fmtShape(to)}`);
  }
  return out;
}
