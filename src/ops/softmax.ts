/** Numerically stable softmax / logSoftmax along one dim, each with a closed-form gradient. */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { noGrad } from '../autograd/grad-mode';
import { normDim } from '../tensor/shape';
import { mapKernel } from './kernel';
import { max, sum } from './reduce';
import { mul, sub, exp, log, add } from './elementwise';

/** log(sum(exp(x))) along dim, kept: max-shifted so large logits do not overflow. */
function logSumExp(x: Tensor, d: number): Tensor {
  const m = max(x, d, true);
  const s = sum(mapKernel('softmax', [x, m], ([v, mv]) => `Math.exp(${v} - ${mv})`), d, true);
  return add(m, log(s));
}

export function softmax(x: Tensor, dim = -1): Tensor {
  const d = normDim('softmax', dim, x.ndim);
  const y = noGrad(() => mapKernel('softmax', [x, logSumExp(x, d)], ([v, l]) => `Math.exp(${v} - ${l})`));
  return record(y, 'softmax', [x], (g) => [mul(y, sub(g, sum(mul(g, y), d, true)))]);
}

export function logSoftmax(x: Tensor, dim = -1): Tensor {
  const d = normDim('logSoftmax', dim, x.ndim);
  const y = noGrad(() => sub(x, logSumExp(x, d)));
  return record(y, 'logSoftmax', [x], (g) => [sub(g, mul(exp(y), sum(g, d, true)))]);
}

export function logsumexp(x: Tensor, dim: number, keepdim = false): Tensor {
  const d = normDim('logsumexp', dim, x.ndim);
  const y = noGrad(() => logSumExp(x, d));
  const out = record(y, 'logsumexp', [x], (g) => [mul(g, exp(sub(x, y)))]);
  return keepdim ? out : out.squeeze(d);
}
