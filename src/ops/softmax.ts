/** Numerically stable softmax / logSoftmax along one dim, each with a closed-form gradient. */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { noGrad } from '../autograd/grad-mode';
import { normDim } from '../tensor/shape';
import { mapKernel } from './kernel';
import { max, sum } from './reduce';
import { mul, sub, exp } from './elementwise';

/**
 * The max-shifted pieces of every softmax-family op along dim d (kept): m = max(x), s = sum(exp(x - m)).
 * Results are formed from x - m (never from x - logsumexp(x), which loses float32 digits when |m| is large).
 */
function shifted(x: Tensor, d: number): { m: Tensor; s: Tensor } {
  const m = max(x, d, true);
  const e = mapKernel('softmax', [x, m], ([v, mv]) => `Math.exp(${v} - ${mv})`);
  const s = sum(e, d, true);
  e.dispose();
  return { m, s };
}

export function softmax(x: Tensor, dim = -1): Tensor {
  const d = normDim('softmax', dim, x.ndim);
  const y = noGrad(() => {
    const { m, s } = shifted(x, d);
    const out = mapKernel('softmax', [x, m, s], ([v, mv, sv]) => `Math.exp(${v} - ${mv}) / ${sv}`);
    m.dispose();
    s.dispose();
    return out;
  });
  return record(y, 'softmax', [x], (g) => [mul(y, sub(g, sum(mul(g, y), d, true)))], [y], { dim: d });
}

export function logSoftmax(x: Tensor, dim = -1): Tensor {
  const d = normDim('logSoftmax', dim, x.ndim);
  const y = noGrad(() => {
    const { m, s } = shifted(x, d);
    const out = mapKernel('logSoftmax', [x, m, s], ([v, mv, sv]) => `((${v} - ${mv}) - Math.log(${sv}))`);
    m.dispose();
    s.dispose();
    return out;
  });
  return record(y, 'logSoftmax', [x], (g) => [sub(g, mul(exp(y), sum(g, d, true)))], [y], { dim: d });
}

export function logsumexp(x: Tensor, dim: number, keepdim = false): Tensor {
  const d = normDim('logsumexp', dim, x.ndim);
  const y = noGrad(() => {
    const { m, s } = shifted(x, d);
    const out = mapKernel('logsumexp', [m, s], ([mv, sv]) => `(${mv} + Math.log(${sv}))`);
    m.dispose();
    s.dispose();
    return out;
  });
  const out = record(y, 'logsumexp', [x], (g) => [mul(g, exp(sub(x, y)))], [x, y], { dim: d });
  return keepdim ? out : out.squeeze(d);
}
