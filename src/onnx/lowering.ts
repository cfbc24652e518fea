/**
 * Op → ONNX nodes (opset 18), keyed by the op names ops pass to `record` / `observeOp`. Each lowering
 * gets the op's output (for its static shape), its tensor inputs as value names, and its attributes.
 * Shapes are the traced ones: Reshape / Expand targets are the sizes seen with the example inputs.
 */
import { Tensor } from '../tensor/tensor';
import type { OpAttrs } from '../autograd/node';
import { DataType } from './proto';
import { GraphBuilder } from './graph-builder';

export class UnsupportedOp extends Error {}

export interface LowerContext {
  b: GraphBuilder;
  /** The value name of a tensor operand (traced value or a constant initializer). */
  val(t: Tensor): string;
  /** module path of the op, for node names */
  scope: string;
}

type Operand = Tensor | number | null | undefined;
type Lowering = (cx: LowerContext, out: Tensor, inputs: readonly (Tensor | null | undefined)[], attrs: OpAttrs) => string;

const UNARY: Record<string, string> = {
  neg: 'Neg',
  exp: 'Exp',
  log: 'Log',
  sqrt: 'Sqrt',
  abs: 'Abs',
  sign: 'Sign',
  sin: 'Sin',
  cos: 'Cos',
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
};
const BINARY: Record<string, string> = { add: 'Add', sub: 'Sub', mul: 'Mul', div: 'Div', pow: 'Pow', maximum: 'Max', minimum: 'Min' };
const COMPARE: Record<string, string> = { eq: 'Equal', gt: 'Greater', ge: 'GreaterOrEqual', lt: 'Less', le: 'LessOrEqual', ne: 'Equal' };

const operand = (cx: LowerContext, v: Operand): string => (v instanceof Tensor ? cx.val(v) : cx.b.scalar(v as number));
const node = (cx: LowerContext, op: string, inputs: string[], attrs: Parameters<GraphBuilder['node']>[2] = {}) =>
  cx.b.node(op, inputs, attrs, cx.scope);
const toFloat = (cx: LowerContext, v: string) => node(cx, 'Cast', [v], { to: DataType.FLOAT });
const toInt64 = (cx: LowerContext, v: string) => node(cx, 'Cast', [v], { to: DataType.INT64 });
const first = (inputs: readonly (Tensor | null | undefined)[]) => inputs[0] as Tensor;

function reduce(op: string): Lowering {
  return (cx, _out, inputs, a) => {
    const dims = a.dims as number[];
    const x = cx.val(first(inputs));
    if (!dims.length) return x; // a 0-d tensor: nothing to reduce
    return node(cx, op, [x, cx.b.int64s(dims)], { keepdims: a.keepdim ? 1 : 0 });
  };
}

function argExtreme(op: string): Lowering {
  return (cx, _out, inputs, a) => {
    let x = cx.val(first(inputs));
    let axis = a.dim as number | null;
    if (axis === null) {
      x = node(cx, 'Reshape', [x, cx.b.int64s([-1])]);
      axis = 0;
    }
    // tsnn's indices are float tensors holding integers
    return toFloat(cx, node(cx, op, [x], { axis, keepdims: a.keepdim ? 1 : 0 }));
  };
}

const GELU_K = Math.sqrt(2 / Math.PI);

function gelu(cx: LowerContext, x: string, approximate: unknown): string {
  const s = (v: number) => cx.b.scalar(v);
  let inner: string;
  if (approximate === 'tanh') {
    const cube = node(cx, 'Mul', [x, node(cx, 'Mul', [x, x])]);
    inner = node(cx, 'Tanh', [node(cx, 'Mul', [s(GELU_K), node(cx, 'Add', [x, node(cx, 'Mul', [s(0.044715), cube])])])]);
  } else {
    inner = node(cx, 'Erf', [node(cx, 'Mul', [x, s(Math.SQRT1_2)])]);
  }
  return node(cx, 'Mul', [s(0.5), node(cx, 'Mul', [x, node(cx, 'Add', [s(1), inner])])]);
}

const LOWERINGS: Record<string, Lowering> = {
  rsqrt: (cx, _o, i) => node(cx, 'Reciprocal', [node(cx, 'Sqrt', [cx.val(first(i))])]),
  square: (cx, _o, i) => {
    const x = cx.val(first(i));
    return node(cx, 'Mul', [x, x]);
  },
  gelu: (cx, _o, i, a) => gelu(cx, cx.val(first(i)), a.approximate),
  clamp: (cx, _o, i, a) => {
    const bound = (v: number) => (Number.isFinite(v) ? cx.b.scalar(v) : '');
    return node(cx, 'Clip', [cx.val(first(i)), bound(a.min as number), bound(a.max as number)]);
  },
  where: (cx, _o, _i, a) => {
    const [x, y] = a.operands as Operand[];
    const cond = node(cx, 'Cast', [cx.val(a.cond as Tensor)], { to: DataType.BOOL });
    return node(cx, 'Where', [cond, operand(cx, x), operand(cx, y)]);
  },
  sum: reduce('ReduceSum'),
  max: reduce('ReduceMax'),
  min: reduce('ReduceMin'),
  argmax: argExtreme('ArgMax'),
  argmin: argExtreme('ArgMin'),
  // a third input: the bias F.linear adds in the product's pass on webasm (ops/matmul.ts matmulAddBias)
  matmul: (cx, _o, i) => {
    const mm = node(cx, 'MatMul', [cx.val(i[0]!), cx.val(i[1]!)]);
    return i[2] ? node(cx, 'Add', [mm, cx.val(i[2])]) : mm;
  },
  softmax: (cx, _o, i, a) => node(cx, 'Softmax', [cx.val(first(i))], { axis: a.dim as number }),
  logSoftmax: (cx, _o, i, a) => node(cx, 'LogSoftmax', [cx.val(first(i))], { axis: a.dim as number }),
  logsumexp: (cx, _o, i, a) => node(cx, 'ReduceLogSumExp', [cx.val(first(i)), cx.b.int64s([a.dim as number])], { keepdims: 1 }),
  conv2d: (cx, out, i, a) => {
    const [x, w, bias] = i as [Tensor, Tensor, Tensor | null];
    const [kH, kW] = w.shape.slice(2);
    const [sh, sw] = a.strides as number[];
    const [dh, dw] = a.dilations as number[];
    const [pt, pl] = a.padsBegin as number[];
    // far-side padding: what makes the output size tsnn computed ('same' pads one more at the end)
    const far = (size: number, outSize: number, k: number, s: number, d: number, near: number) =>
      Math.max(0, (outSize - 1) * s + d * (k - 1) + 1 - size - near);
    const pb = far(x.shape[2], out.shape[2], kH, sh, dh, pt);
    const pr = far(x.shape[3], out.shape[3], kW, sw, dw, pl);
    const ins = [cx.val(x), cx.val(w), ...(bias ? [cx.val(bias)] : [])];
    return node(cx, 'Conv', ins, {
      kernel_shape: [kH, kW],
      strides: [sh, sw],
      dilations: [dh, dw],
      pads: [pt, pl, pb, pr],
      group: a.group as number,
    });
  },
  maxPool2d: (cx, _o, i, a) => {
    const [ph, pw] = a.pads as number[];
    return node(cx, 'MaxPool', [cx.val(first(i))], {
      kernel_shape: a.kernel as number[],
      strides: a.strides as number[],
      pads: [ph, pw, ph, pw],
      dilations: a.dilations as number[],
      ceil_mode: a.ceilMode ? 1 : 0,
    });
  },
  avgPool2d: (cx, _o, i, a) => {
    if (a.divisorOverride !== null) throw new UnsupportedOp(`avgPool2d with divisorOverride has no ONNX equivalent`);
    const [ph, pw] = a.pads as number[];
    return node(cx, 'AveragePool', [cx.val(first(i))], {
      kernel_shape: a.kernel as number[],
      strides: a.strides as number[],
      pads: [ph, pw, ph, pw],
      ceil_mode: a.ceilMode ? 1 : 0,
      count_include_pad: a.countIncludePad ? 1 : 0,
    });
  },
  adaptiveAvgPool2d: (cx, out, i) => {
    const x = first(i);
    const [H, W] = x.shape.slice(2);
    const [OH, OW] = out.shape.slice(2);
    if (OH === 1 && OW === 1) return node(cx, 'GlobalAveragePool', [cx.val(x)]);
    if (H % OH !== 0 || W % OW !== 0) {
      throw new UnsupportedOp(
        `adaptiveAvgPool2d from ${H}x${W} to ${OH}x${OW} has uneven windows, which ONNX's AveragePool cannot express (use an output size that divides the input size)`,
      );
    }
    const k = [H / OH, W / OW];
    return node(cx, 'AveragePool', [cx.val(x)], { kernel_shape: k, strides: k });
  },
  indexSelect: (cx, _o, i, a) => node(cx, 'Gather', [cx.val(first(i)), toInt64(cx, cx.val(a.index as Tensor))], { axis: a.dim as number }),
  gather: (cx, _o, i, a) => node(cx, 'GatherElements', [cx.val(first(i)), toInt64(cx, cx.val(a.index as Tensor))], { axis: a.dim as number }),
  oneHot: (cx, _o, i, a) =>
    node(
      cx,
      'OneHot',
      [toInt64(cx, cx.val(first(i))), cx.b.int64s([a.numClasses as number]), cx.b.floatInitializer('onehot_values', [2], Float32Array.of(0, 1))],
      { axis: -1 },
    ),
  reshape: (cx, out, i) => node(cx, 'Reshape', [cx.val(first(i)), cx.b.int64s(out.shape)]),
  squeeze: (cx, out, i) => node(cx, 'Reshape', [cx.val(first(i)), cx.b.int64s(out.shape)]),
  unsqueeze: (cx, out, i) => node(cx, 'Reshape', [cx.val(first(i)), cx.b.int64s(out.shape)]),
  expand: (cx, out, i) => node(cx, 'Expand', [cx.val(first(i)), cx.b.int64s(out.shape)]),
  permute: (cx, _o, i, a) => node(cx, 'Transpose', [cx.val(first(i))], { perm: a.dims as number[] }),
  slice: (cx, _o, i, a) => {
    const b = cx.b;
    return node(cx, 'Slice', [
      cx.val(first(i)),
      b.int64s([a.start as number]),
      b.int64s([a.end as number]),
      b.int64s([a.dim as number]),
      b.int64s([a.step as number]),
    ]);
  },
  cat: (cx, _o, i, a) =>
    node(
      cx,
      'Concat',
      i.map((t) => cx.val(t!)),
      { axis: a.dim as number },
    ),
  // same values: the output is another name for the input
  clone: (cx, _o, i) => cx.val(first(i)),
  to: (cx, _o, i) => cx.val(first(i)),
  inplace: (cx, _o, i) => cx.val(first(i)),
};

for (const [name, op] of Object.entries(UNARY)) LOWERINGS[name] = (cx, _o, i) => node(cx, op, [cx.val(first(i))]);
for (const [name, op] of Object.entries(BINARY)) {
  LOWERINGS[name] = (cx, _o, _i, a) =>
    node(
      cx,
      op,
      (a.operands as Operand[]).map((v) => operand(cx, v)),
    );
}
for (const [name, op] of Object.entries(COMPARE)) {
  LOWERINGS[name] = (cx, _o, _i, a) => {
    const test = node(
      cx,
      op,
      (a.operands as Operand[]).map((v) => operand(cx, v)),
    );
    return toFloat(cx, name === 'ne' ? node(cx, 'Not', [test]) : test);
  };
}

const HINTS: Record<string, string> = {
  compiled: 'export the model itself, not the result of nn.compile(model)',
  fill_: 'in-place writes into traced values cannot be exported; use the out-of-place form',
  copy_: 'in-place writes into traced values cannot be exported; use the out-of-place form',
};

/** The ONNX value name of the op's output; UnsupportedOp when ONNX has no counterpart here. */
export function lowerOp(cx: LowerContext, name: string, out: Tensor, inputs: readonly (Tensor | null | undefined)[], attrs: OpAttrs): string {
  const lower = LOWERINGS[name];
  if (!lower) throw new UnsupportedOp(`op '${name}' has no ONNX export${HINTS[name] ? ` (${HINTS[name]})` : ''}`);
  return lower(cx, out, inputs, attrs);
}
