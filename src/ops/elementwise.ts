/**
 * Elementwise ops. Each is one definition: its kernel expression (gpu.js kernel language, shared by
 * every backend) and its gradient rule, written with other ops. Binary ops broadcast NumPy-style and
 * reduce gradients back to each input's shape.
 */
import { Tensor, TensorLike } from '../tensor/tensor';
import { record, observeOp } from '../autograd/node';
import type { OpAttrs } from '../autograd/node';
import { mapKernel } from './kernel';
import { lit } from '../backend/kernel-builder';
import { sumTo } from './sum-to';
import type { KernelBuilder } from '../backend/kernel-builder';

type Expr1 = (x: string, kb: KernelBuilder) => string;
type Expr2 = (a: string, b: string, kb: KernelBuilder) => string;

function checkOperand(op: string, x: unknown): void {
  if (!(x instanceof Tensor) && typeof x !== 'number') {
    throw new Error(`${op}: expected a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
  }
}

/**
 * Defines a differentiable unary op. `grad(g, x, y)` maps the output grad to the input grad; `saves` names
 * what that rule reads (input x, output y), so autograd can refuse a backward after either was overwritten.
 */
export function unary(
  name: string,
  expr: Expr1,
  grad?: (g: Tensor, x: Tensor, y: Tensor) => Tensor,
  saves: ('x' | 'y')[] = ['x'],
  attrs: OpAttrs = {},
) {
  return (x: Tensor): Tensor => {
    checkOperand(name, x);
    const y = mapKernel(name, [x], ([v], kb) => expr(v, kb));
    return grad
      ? record(
          y,
          name,
          [x],
          (g) => [grad(g, x, y)],
          saves.map((k) => (k === 'x' ? x : y)),
          attrs,
        )
      : observeOp(y, name, [x], attrs);
  };
}

type BinaryGrad = (g: Tensor, a: TensorLike, b: TensorLike, y: Tensor, needs: [boolean, boolean]) => [Tensor | null, Tensor | null];

/**
 * Defines a differentiable binary op; either side may be a plain number. `grad` gets which inputs need a
 * gradient; `saves` names what it reads (a, b, the output y).
 */
export function binary(name: string, expr: Expr2, grad?: BinaryGrad, saves: ('a' | 'b' | 'y')[] = []) {
  return (a: TensorLike, b: TensorLike): Tensor => {
    checkOperand(name, a);
    checkOperand(name, b);
    if (!(a instanceof Tensor) && !(b instanceof Tensor)) throw new Error(`${name}: at least one operand must be a Tensor`);
    const y = mapKernel(name, [a, b], ([x0, x1], kb) => expr(x0, x1, kb));
    const ins = [a instanceof Tensor ? a : null, b instanceof Tensor ? b : null];
    // plain-number operands reach the op observer (ONNX export) through attrs
    if (!grad) return observeOp(y, name, ins, { operands: [a, b] });
    const needs: [boolean, boolean] = [!!ins[0]?.requiresGrad, !!ins[1]?.requiresGrad];
    return record(
      y,
      name,
      ins,
      (g) => {
        const [ga, gb] = grad(g, a, b, y, needs);
        return [ga && needs[0] ? sumTo(ga, ins[0]!.shape) : null, gb && needs[1] ? sumTo(gb, ins[1]!.shape) : null];
      },
      saves.map((k) => (k === 'a' ? a : k === 'b' ? b : y)),
      { operands: [a, b] },
    );
  };
}

const cmp = (name: string, op: string) => binary(name, (a, b) => `(${a} ${op} ${b} ? 1.0 : 0.0)`);

// ---- arithmetic ---------------------------------------------------------------------------------
export const add = binary(
  'add',
  (a, b) => `(${a} + ${b})`,
  (g) => [g, g],
);
export const sub = binary(
  'sub',
  (a, b) => `(${a} - ${b})`,
  (g) => [g, neg(g)],
);
export const mul = binary(
  'mul',
  (a, b) => `(${a} * ${b})`,
  (g, a, b, _y, n) => [n[0] ? mul(g, b) : null, n[1] ? mul(g, a) : null],
  ['a', 'b'],
);
// d(a/b)/db = -a / b² (from a and b, as PyTorch: the output may be overwritten in place afterwards)
export const div = binary(
  'div',
  (a, b) => `(${a} / ${b})`,
  (g, a, b, _y, n) => [n[0] ? div(g, b) : null, n[1] ? neg(div(mul(g, a), mul(b, b))) : null],
  ['a', 'b'],
);
/**
 * a ** b. GLSL's pow(a, b) is undefined for a < 0 (it returns NaN on most GPUs), so a negative base
 * with an integer exponent is computed as ±|a| ** b, as PyTorch (and JS) do; other negative-base
 * cases stay NaN.
 */
function powExpr(a: string, b: string, kb: KernelBuilder): string {
  const m = kb.let(`Math.pow(Math.abs(${a}), ${b})`);
  const odd = `Math.abs(${b} - 2.0 * Math.floor(${b} * 0.5)) > 0.5`;
  return `((${a} < 0.0 && Math.floor(${b}) == ${b}) ? (${odd} ? -${m} : ${m}) : (${a} == 0.0 && ${b} == 0.0 ? 1.0 : Math.pow(${a}, ${b})))`;
}
// As PyTorch: d/da is 0 where b == 0 (not 0 * a^-1 = NaN at a = 0); d/db is 0 where a == 0 and b >= 0 (not 0 * log 0)
export const pow = binary(
  'pow',
  powExpr,
  (g, a, b, y, n) => [
    n[0]
      ? mul(
          g,
          mapKernel('pow_backward', [a, b], ([x, e], kb) => `(${e} == 0.0 ? 0.0 : ${e} * ${powExpr(x, `(${e} - 1.0)`, kb)})`),
        )
      : null,
    n[1]
      ? mul(
          g,
          mapKernel('pow_backward_exponent', [a, b, y], ([x, e, v]) => `((${x} == 0.0 && ${e} >= 0.0) ? 0.0 : ${v} * Math.log(${x}))`),
        )
      : null,
  ],
  ['a', 'b', 'y'],
);
export const maximum = binary(
  'maximum',
  (a, b) => `Math.max(${a}, ${b})`,
  (g, a, b) => {
    const ta = mapKernel('maximum', [a, b], ([x, y]) => `(${x} > ${y} ? 1.0 : (${x} == ${y} ? 0.5 : 0.0))`);
    return [mul(g, ta), mul(g, sub(1, ta))];
  },
  ['a', 'b'],
);
export const minimum = binary(
  'minimum',
  (a, b) => `Math.min(${a}, ${b})`,
  (g, a, b) => {
    const ta = mapKernel('minimum', [a, b], ([x, y]) => `(${x} < ${y} ? 1.0 : (${x} == ${y} ? 0.5 : 0.0))`);
    return [mul(g, ta), mul(g, sub(1, ta))];
  },
  ['a', 'b'],
);

// ---- comparisons (no gradient; 1.0 / 0.0 masks) -----------------------------------------------------
export const eq = cmp('eq', '==');
export const ne = cmp('ne', '!=');
export const gt = cmp('gt', '>');
export const ge = cmp('ge', '>=');
export const lt = cmp('lt', '<');
export const le = cmp('le', '<=');

// ---- unary ------------------------------------------------------------------------------------------
export const neg = unary(
  'neg',
  (x) => `(-${x})`,
  (g) => neg(g),
  [],
);
export const exp = unary(
  'exp',
  (x) => `Math.exp(${x})`,
  (g, _x, y) => mul(g, y),
  ['y'],
);
export const log = unary(
  'log',
  (x) => `Math.log(${x})`,
  (g, x) => div(g, x),
);
export const sqrt = unary(
  'sqrt',
  (x) => `Math.sqrt(${x})`,
  (g, _x, y) => div(g, mul(y, 2)),
  ['y'],
);
export const rsqrt = unary(
  'rsqrt',
  (x) => `(1.0 / Math.sqrt(${x}))`,
  (g, _x, y) => mul(g, mul(pow(y, 3), -0.5)),
  ['y'],
);
export const abs = unary(
  'abs',
  (x) => `Math.abs(${x})`,
  (g, x) => mul(g, sign(x)),
);
export const sign = unary(
  'sign',
  (x) => `(${x} > 0.0 ? 1.0 : (${x} < 0.0 ? -1.0 : 0.0))`,
  (g) => mul(g, 0),
  [],
);
export const square = unary(
  'square',
  (x) => `(${x} * ${x})`,
  (g, x) => mul(g, mul(x, 2)),
);
export const sin = unary(
  'sin',
  (x) => `Math.sin(${x})`,
  (g, x) => mul(g, cos(x)),
);
export const cos = unary(
  'cos',
  (x) => `Math.cos(${x})`,
  (g, x) => neg(mul(g, sin(x))),
);
export const relu = unary(
  'relu',
  (x) => `Math.max(${x}, 0.0)`,
  (g, x) => mul(g, gt(x, 0)),
);
export const sigmoid = unary(
  'sigmoid',
  (x) => `(1.0 / (1.0 + Math.exp(-${x})))`,
  (g, _x, y) => mul(g, mul(y, sub(1, y))),
  ['y'],
);
/**
 * tanh, with the argument clamped to ±20 (where tanh is ±1 in float32): gpu.js computes tanh on GL
 * from exp(2x), which overflows to Inf/Inf = NaN beyond |x| ≈ 44.
 */
const tanhOf = (x: string) => `Math.tanh(Math.min(Math.max(${x}, -20.0), 20.0))`;
export const tanh = unary(
  'tanh',
  (x) => tanhOf(x),
  (g, _x, y) => mul(g, sub(1, mul(y, y))),
  ['y'],
);

/** erf(x) by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7): no kernel language has erf. */
function erf(x: string, kb: KernelBuilder): string {
  const ax = kb.let(`Math.abs(${x})`);
  const t = kb.let(`1.0 / (1.0 + 0.3275911 * ${ax})`);
  const poly = `((((1.061405429 * ${t} - 1.453152027) * ${t} + 1.421413741) * ${t} - 0.284496736) * ${t} + 0.254829592) * ${t}`;
  const e = kb.let(`1.0 - ${poly} * Math.exp(-${ax} * ${ax})`);
  return `(${x} >= 0.0 ? ${e} : -${e})`;
}
const SQRT1_2 = lit(Math.SQRT1_2);
const INV_SQRT_2PI = lit(1 / Math.sqrt(2 * Math.PI));
const GELU_K = lit(Math.sqrt(2 / Math.PI));

const geluExact = unary(
  'gelu',
  (x, kb) => `(0.5 * ${x} * (1.0 + ${erf(`(${x} * ${SQRT1_2})`, kb)}))`,
  (g, x) =>
    mul(
      g,
      mapKernel(
        'gelu_backward',
        [x],
        ([v], kb) => `(0.5 * (1.0 + ${erf(`(${v} * ${SQRT1_2})`, kb)}) + ${v} * ${INV_SQRT_2PI} * Math.exp(-0.5 * ${v} * ${v}))`,
      ),
    ),
);
const geluTanh = unary(
  'gelu',
  (x) => `(0.5 * ${x} * (1.0 + ${tanhOf(`${GELU_K} * (${x} + 0.044715 * ${x} * ${x} * ${x})`)}))`,
  (g, x) =>
    mul(
      g,
      mapKernel('gelu_backward', [x], ([v], kb) => {
        const th = kb.let(tanhOf(`${GELU_K} * (${v} + 0.044715 * ${v} * ${v} * ${v})`));
        return `(0.5 * (1.0 + ${th}) + 0.5 * ${v} * (1.0 - ${th} * ${th}) * ${GELU_K} * (1.0 + 0.134145 * ${v} * ${v}))`;
      }),
    ),
  ['x'],
  { approximate: 'tanh' },
);
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return approximate === 'tanh' ? geluTanh(x) : geluExact(x);
}

export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  const lo = min ?? -Infinity;
  const hi = max ?? Infinity;
  if (lo > hi) throw new Error(`clamp: min ${lo} is greater than max ${hi}`);
  const y = mapKernel('clamp', [x, lo, hi], ([v, a, b]) => `Math.min(Math.max(${v}, ${a}), ${b})`);
  return record(
    y,
    'clamp',
    [x],
    (g) => [
      mul(
        g,
        mapKernel('clamp_backward', [x, lo, hi], ([v, a, b]) => `(${v} >= ${a} && ${v} <= ${b} ? 1.0 : 0.0)`),
      ),
    ],
    [x],
    { min: lo, max: hi },
  );
}

/** cond ? a : b, broadcasting all three; cond is a 0/1 mask tensor. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (!(cond instanceof Tensor)) throw new Error('where: condition must be a Tensor');
  const y = mapKernel('where', [cond, a, b], ([c, x, z]) => `(${c} != 0.0 ? ${x} : ${z})`);
  const ins = [a instanceof Tensor ? a : null, b instanceof Tensor ? b : null];
  return record(
    y,
    'where',
    ins,
    (g) => [
      ins[0]
        ? sumTo(
            mapKernel('where_backward', [cond, g], ([c, v]) => `(${c} != 0.0 ? ${v} : 0.0)`),
            ins[0].shape,
          )
        : null,
      ins[1]
        ? sumTo(
            mapKernel('where_backward', [cond, g], ([c, v]) => `(${c} != 0.0 ? 0.0 : ${v})`),
            ins[1].shape,
          )
        : null,
    ],
    [cond],
    { cond, operands: [a, b] },
  );
}
