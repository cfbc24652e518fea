/**
 * The inverse of broadcasting, for gradient rules. Written with Tensor's method forms, not imports of
 * reduce.ts/shape.ts: sum's gradient expands and expand's gradient sums, so importing them here would
 * make the op modules an import circle.
 */
import type { Tensor } from '../tensor/tensor';
import type { Shape } from '../tensor/shape';

/** Sums a broadcast gradient back down to `shape`. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  g.shape.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) dims.push(i);
  });
  const s = dims.length ? g.sum(dims, true) : g;
  return s.reshape([...shape]);
}
