/**
 * Golden values from PyTorch 1.13 (test/fixtures/gen_ops.py → ops.json): every op's output and the
 * gradients of sum(out * w), w[i] = sin(i + 1), agree within 1e-4.
 */
import { expect } from 'chai';
import { ops, Tensor, tensor } from '../../src';
import { expectClose, fixture, testDevices } from '../helpers';

interface Case {
  name: string;
  inputs: { shape: number[]; data: number[]; requiresGrad: boolean }[];
  output: { shape: number[]; data: number[] };
  grads?: (number[] | null)[];
}

function inplaceCase(op: 'add_' | 'sub_' | 'mul_' | 'div_') {
  return (x: Tensor, o: Tensor) => {
    const y = x.mul(1);
    y[op](o);
    return y;
  };
}

/** The tsnn form of each case in gen_ops.py. */
const CASES: Record<string, (...xs: Tensor[]) => Tensor> = {
  neg: (x) => x.neg(),
  exp: (x) => x.exp(),
  log: (x) => x.log(),
  sqrt: (x) => x.sqrt(),
  rsqrt: (x) => x.rsqrt(),
  abs: (x) => x.abs(),
  square: (x) => x.square(),
  sin: (x) => x.sin(),
  cos: (x) => x.cos(),
  relu: (x) => x.relu(),
  sigmoid: (x) => x.sigmoid(),
  tanh: (x) => x.tanh(),
  gelu: (x) => x.gelu(),
  gelu_tanh: (x) => x.gelu('tanh'),
  sign: (x) => x.sign(),
  add: (a, b) => a.add(b),
  sub: (a, b) => a.sub(b),
  mul: (a, b) => a.mul(b),
  div: (a, b) => a.div(b),
  pow: (a, b) => a.pow(b),
  pow_scalar: (x) => x.pow(3),
  rpow_scalar: (x) => ops.pow(2, x),
  maximum: (a, b) => a.maximum(b),
  minimum: (a, b) => a.minimum(b),
  clamp: (x) => x.clamp(-0.5, 0.5),
  clamp_min: (x) => x.clamp(-0.5),
  where: (c, a, b) => ops.where(c, a, b),
  matmul_1d_1d: (a, b) => a.matmul(b),
  matmul_1d_2d: (a, b) => a.matmul(b),
  matmul_2d_1d: (a, b) => a.matmul(b),
  matmul_2d_2d: (a, b) => a.matmul(b),
  matmul_batched: (a, b) => a.matmul(b),
  matmul_broadcast: (a, b) => a.matmul(b),
  matmul_transposed: (a, b) => a.T.matmul(b.T),
  sum_all: (x) => x.sum(),
  sum_dim_keepdim: (x) => x.sum(1, true),
  sum_dims: (x) => x.sum([0, 2]),
  mean_all: (x) => x.mean(),
  mean_dim: (x) => x.mean(-1),
  var_dim: (x) => x.var(1),
  var_biased: (x) => x.var(undefined, { unbiased: false }),
  max_all: (x) => x.max(),
  max_dim: (x) => x.max(1),
  min_dim_keepdim: (x) => x.min(2, true),
  argmax_dim: (x) => x.argmax(1),
  argmin_all: (x) => x.argmin(),
  softmax: (x) => x.softmax(-1),
  softmax_dim0: (x) => x.softmax(0),
  log_softmax: (x) => x.logSoftmax(-1),
  logsumexp: (x) => ops.logsumexp(x, 1),
  reshape: (x) => x.reshape(4, -1),
  view: (x) => x.view(6, 4),
  flatten: (x) => x.flatten(1),
  permute: (x) => x.permute(2, 0, 1),
  transpose: (x) => x.transpose(0, 2),
  unsqueeze: (x) => x.unsqueeze(1),
  squeeze: (x) => x.squeeze(),
  expand: (x) => x.expand(2, 3, 4),
  slice_step: (x) => x.slice(2, 1, undefined, 2),
  narrow: (x) => x.narrow(1, 1, 2),
  cat: (a, b) => ops.cat([a, b], 1),
  stack: (a, b) => ops.stack([a, b], 1),
  index_select: (x, i) => x.indexSelect(0, i),
  gather: (x, i) => x.gather(1, i),
  one_hot: (i) => ops.oneHot(i, 4),
  clone: (x) => x.clone(),
  contiguous: (x) => x.T.contiguous(),
  add_: inplaceCase('add_'),
  sub_: inplaceCase('sub_'),
  mul_: inplaceCase('mul_'),
  div_: inplaceCase('div_'),
  zero_: (x) => x.mul(2).zero_().add(x),
  fill_: (x) => x.mul(2).fill_(1.5).mul(x),
  copy_: (x, s) => x.mul(2).copy_(s).mul(x),
};

describe('ops: golden values from PyTorch', () => {
  const { cases, torch } = fixture<{ torch: string; cases: Case[] }>('ops.json');

  it(`the fixture (torch ${torch}) and this test cover the same cases, every op`, () => {
    expect(cases.map((c) => c.name).sort()).to.deep.equal(Object.keys(CASES).sort());
  });

  for (const device of testDevices()) {
    describe(device, () => {
      for (const c of cases) {
        it(c.name, () => {
          const f = CASES[c.name];
          const xs = c.inputs.map((t) => tensor(Float32Array.from(t.data), { shape: t.shape, device, requiresGrad: t.requiresGrad }));
          const y = f(...xs);
          expect(y.shape, 'output shape').to.deep.equal(c.output.shape);
          expectClose(y, c.output.data, 1e-4, 1e-4, `${c.name} output`);
          if (!c.grads) return;
          const w = tensor(
            Array.from({ length: y.numel() }, (_, i) => Math.sin(i + 1)),
            { shape: y.shape, device },
          );
          y.mul(w).sum().backward();
          c.grads.forEach((g, k) => {
            if (!g) return;
            expect(xs[k].grad, `${c.name}: input ${k} got no gradient`).to.not.equal(null);
            expectClose(xs[k].grad!, g, 1e-4, 1e-4, `${c.name} grad of input ${k}`);
          });
        });
      }
    });
  }
});
