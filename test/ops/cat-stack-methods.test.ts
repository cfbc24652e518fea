/** The method forms of cat and stack (docs/API.md lists every op in method and function form): `x.cat(others, dim)` puts x first. */
import { expect } from 'chai';
import { tensor } from '../../src';

describe('ops: Tensor.cat / Tensor.stack methods', () => {
  const a = tensor([[1, 2]]);
  const b = tensor([[3, 4]]);
  const c = tensor([[5, 6]]);

  it('x.cat(others, dim) is cat([x, ...others], dim)', () => {
    expect(a.cat([b, c]).toArray()).to.deep.equal([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(a.cat([b], 1).toArray()).to.deep.equal([[1, 2, 3, 4]]);
  });

  it('x.stack(others, dim) is stack([x, ...others], dim)', () => {
    expect(a.stack([b]).shape).to.deep.equal([2, 1, 2]);
    expect(a.stack([b], 2).toArray()).to.deep.equal([
      [
        [1, 3],
        [2, 4],
      ],
    ]);
  });

  it('gradients reach x and the others', () => {
    const x = tensor([1, 2], { requiresGrad: true });
    const y = tensor([3], { requiresGrad: true });
    x.cat([y])
      .mul(tensor([1, 2, 3]))
      .sum()
      .backward();
    expect(x.grad!.toArray()).to.deep.equal([1, 2]);
    expect(y.grad!.toArray()).to.deep.equal([3]);
  });
});
