/** Parameter initialisers with PyTorch's formulas (torch.nn.init), drawing from the seeded RNG. */
import { Tensor } from '../tensor/tensor';
import { uniform, randn, full } from '../tensor/creation';
import { noGrad } from '../autograd/grad-mode';

/** fan_in / fan_out as torch.nn.init._calculate_fan_in_and_fan_out computes them. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) throw new Error(`init: fan in/out need at least 2 dims, got [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

function fill(t: Tensor, make: () => Tensor): Tensor {
  noGrad(() => t.copy_(make()));
  return t;
}

export function uniform_(t: Tensor, lo = 0, hi = 1): Tensor {
  return fill(t, () => uniform(t.shape, lo, hi, { device: t.device }));
}

export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return fill(t, () => randn(t.shape, { device: t.device }).mul(std).add(mean));
}

export function constant_(t: Tensor, v: number): Tensor {
  return fill(t, () => full(t.shape, v, { device: t.device }));
}
export const zeros_ = (t: Tensor) => constant_(t, 0);
export const ones_ = (t: Tensor) => constant_(t, 1);

/** kaiming_uniform_ with leaky-relu gain for slope `a` (PyTorch's Linear/Conv default uses a = sqrt(5)). */
export function kaimingUniform_(t: Tensor, a = 0, mode: 'fanIn' | 'fanOut' = 'fanIn'): Tensor {
  const f = fans(t.shape);
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = Math.sqrt(3) * (gain / Math.sqrt(mode === 'fanIn' ? f.fanIn : f.fanOut));
  return uniform_(t, -bound, bound);
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const f = fans(t.shape);
  const bound = gain * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform_(t, -bound, bound);
}

/** The default weight+bias init of Linear and Conv layers. */
export function resetLinearLike(weight: Tensor, bias: Tensor | null): void {
  kaimingUniform_(weight, Math.sqrt(5));
  if (bias) {
    const { fanIn } = fans(weight.shape);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform_(bias, -bound, bound);
  }
}
