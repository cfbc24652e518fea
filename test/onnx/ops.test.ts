/** Every op with an ONNX lowering, exported inside a small module and checked in ONNX Runtime. */
import { expect } from 'chai';
import { nn, F, Tensor, child, manualSeed, randn, arange, tensor, ops, onnx } from '../../src';

/** Fixed weights made from a range (no random draws inside a traced forward). */
const weights = (shape: number[]) =>
  ops.reshape(
    ops.sin(
      arange(
        0,
        shape.reduce((a, b) => a * b),
        1,
      ),
    ),
    shape,
  );
import { expectSameAsOrt } from './ort';

/** A module whose forward is `fn` (the op under test), with a Linear in front so parameters flow too. */
function wrap(fn: (x: Tensor) => Tensor) {
  class OpNet extends nn.Module {
    forward(x: Tensor): Tensor {
      return fn(x);
    }
  }
  return new OpNet();
}

const CASES: [string, (x: Tensor) => Tensor, number[]][] = [
  [
    'unary: neg exp log sqrt abs sign sin cos rsqrt square',
    (x) =>
      ops
        .add(ops.sin(ops.neg(x)), ops.cos(x))
        .add(ops.log(ops.exp(ops.abs(x)).add(1)))
        .add(ops.sqrt(ops.abs(x)))
        .add(ops.sign(x))
        .add(ops.rsqrt(ops.square(x).add(1))),
    [3, 5],
  ],
  [
    'pow (tensor and number exponents), maximum, minimum',
    (x) =>
      ops
        .pow(ops.abs(x).add(0.5), ops.sigmoid(x))
        .add(ops.pow(x, 3))
        .add(ops.maximum(x, 0.2))
        .sub(ops.minimum(x, ops.mul(x, 0.5))),
    [4, 3],
  ],
  [
    'comparisons as 0/1 masks',
    (x) =>
      ops
        .eq(ops.gt(x, 0), ops.ge(x, 0.1))
        .add(ops.lt(x, -0.2))
        .add(ops.le(x, 0))
        .add(ops.ne(x, x.mul(2))),
    [4, 6],
  ],
  [
    'clamp (both sides, one side), where with a number',
    (x) =>
      ops
        .clamp(x, -0.3, 0.4)
        .add(ops.clamp(x, 0))
        .add(ops.where(ops.gt(x, 0), x, 7)),
    [2, 7],
  ],
  [
    'reductions: sum mean max min variance (dims, keepdim), logsumexp',
    (x) =>
      ops
        .add(ops.sum(x, 1, true), ops.mean(x, [1, 2], true))
        .add(ops.max(x, 2, true))
        .sub(ops.min(x, 1, true))
        .add(ops.variance(x, 2, { keepdim: true }))
        .add(ops.unsqueeze(ops.logsumexp(x, 1), 1)),
    [2, 3, 4],
  ],
  ['whole-tensor reductions', (x) => ops.add(x, ops.sum(x)).add(ops.max(x)).add(ops.mean(x)), [3, 4]],
  ['argmax / argmin (dim, flat)', (x) => ops.add(ops.argmax(x, 1, true), ops.argmin(x, 0)).add(ops.argmax(x)), [4, 5]],
  ['softmax and logSoftmax over dim 0', (x) => ops.add(ops.softmax(x, 0), ops.logSoftmax(x, 0)), [3, 4]],
  [
    'views: transpose, squeeze, unsqueeze, expand, flatten, narrow, strided slice, stack',
    (x) => {
      const t = ops.transpose(x, 0, 1); // [4, 3]
      const e = ops.expand(ops.unsqueeze(ops.slice(t, 0, 0, 4, 2), 0), [2, 2, 3]);
      return ops.stack([ops.flatten(e), ops.flatten(ops.expand(ops.squeeze(ops.narrow(ops.unsqueeze(t, 0), 1, 1, 2)), [2, 2, 3]))], 1);
    },
    [3, 4],
  ],
  [
    'matmul: batched, broadcast against a matrix, 1-D operands',
    (x) => {
      const a = ops.matmul(x, ops.transpose(x, 1, 2)); // [2, 3, 3]
      const v = ops.reshape(ops.slice(ops.slice(x, 0, 0, 1), 2, 0, 1), [3]);
      const w = ops.matmul(v, ops.reshape(ops.slice(x, 0, 1, 2), [3, 4])); // [4]
      const b = ops.matmul(x, ops.reshape(arange(0, 8, 1), [4, 2]).div(8)); // [2, 3, 2]
      return ops.add(a, ops.matmul(w, w)).add(ops.sum(b, 2, true));
    },
    [2, 3, 4],
  ],
  [
    'indexSelect, gather, oneHot with constant index tensors',
    (x) => {
      const picked = ops.indexSelect(x, 1, tensor([3, 0, 0, 2]));
      const g = ops.gather(
        x,
        1,
        tensor([
          [1, 0],
          [2, 2],
          [3, 1],
        ]),
      );
      return ops.add(ops.sum(picked, 1, true), ops.sum(g, 1, true)).add(ops.matmul(ops.oneHot(tensor([1, 0, 3]), 4), ops.transpose(x, 0, 1)));
    },
    [3, 4],
  ],
  [
    'conv2d: stride, dilation, groups, padding 1 / same (odd, dilated) / valid; bias and no bias',
    (x) => {
      const w1 = weights([4, 2, 3, 3]);
      const w2 = weights([4, 4, 2, 3]);
      const a = F.conv2d(x, w1, tensor([0.1, -0.2, 0.3, 0]), { stride: 2, padding: 1, groups: 2 });
      const b = F.conv2d(x, w2, null, { padding: 'same', dilation: [2, 1] });
      const c = F.conv2d(x, w1.slice(1, 0, 1).expand([4, 4, 3, 3]).contiguous(), null, { padding: 'valid' });
      return ops.add(ops.sum(a, [2, 3]), ops.sum(b, [2, 3])).add(ops.sum(c, [2, 3]));
    },
    [2, 4, 9, 8],
  ],
  [
    'pooling: max (padding, dilation, ceil mode), avg (count_include_pad both ways, ceil), adaptive avg (1 and even windows)',
    (x) => {
      const m = F.maxPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true });
      const d = F.maxPool2d(x, 2, { dilation: 2 });
      const a = F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false });
      const b = F.avgPool2d(x, 2, { ceilMode: true });
      const g = F.adaptiveAvgPool2d(x, 1);
      const h = F.adaptiveAvgPool2d(x, [4, 2]);
      return ops.cat(
        [m, d, a, b, g, h].map((t) => ops.flatten(t, 1)),
        1,
      );
    },
    [2, 3, 8, 8],
  ],
];

describe('onnx export: ops (checked in ONNX Runtime)', function () {
  this.timeout(120_000);
  for (const [name, fn, shape] of CASES) {
    it(name, async () => {
      manualSeed(11);
      const net = wrap(fn);
      await expectSameAsOrt(net, [randn(shape)], [[randn(shape)], [randn(shape).mul(3)]]);
    });
  }

  it('LayerNorm without affine parameters and BatchNorm2d without running statistics export through their ops', async () => {
    manualSeed(13);
    const net = new nn.Sequential(
      new nn.BatchNorm2d(3, { trackRunningStats: false, affine: false }),
      new nn.Flatten(),
      new nn.LayerNorm(48, { elementwiseAffine: false }),
    );
    await expectSameAsOrt(net, [randn([2, 3, 4, 4])], [[randn([2, 3, 4, 4]).mul(2)]]);
  });

  it('layers: Embedding, LayerNorm (2-D normalized shape), BatchNorm1d, Flatten, Identity, AvgPool2d, MaxPool2d', async () => {
    manualSeed(12);
    class Net extends nn.Module {
      @child emb = new nn.Embedding(7, 6);
      @child ln = new nn.LayerNorm([2, 6]);
      @child bn = new nn.BatchNorm1d(2);
      @child flat = new nn.Flatten();
      @child id = new nn.Identity();
      @child pool = new nn.Sequential(new nn.MaxPool2d(2), new nn.AvgPool2d([1, 2]));
      forward(ids: Tensor): Tensor {
        const h = this.bn(this.ln(this.emb(ids))); // [N, 2, 6]
        return ops.cat([this.flat(this.id(h) as Tensor), this.flat(this.pool(ops.unsqueeze(h, 1)))], 1);
      }
    }
    const net = new Net();
    net.train();
    net(
      tensor([
        [1, 2],
        [3, 4],
        [0, 6],
      ]),
    );
    const ids = () =>
      tensor([
        [1, 2],
        [3, 4],
        [5, 6],
        [0, 0],
      ]);
    await expectSameAsOrt(
      net,
      [ids()],
      [
        [
          tensor([
            [6, 5],
            [4, 3],
            [2, 1],
            [0, 6],
          ]),
        ],
      ],
    );
  });
});

describe('onnx export: names', () => {
  it('nodes are named by the module path they come from', () => {
    const net = new nn.Sequential(new nn.Linear(2, 2), new nn.Sequential(new nn.ReLU()));
    const m = onnx.decodeModel(onnx.exportBytes(net, [randn([1, 2])]));
    expect(m.graph.node.map((n: any) => n.name)).to.deep.equal(['0/Transpose', '0/MatMul', '0/Add', '1.0/Relu']);
  });
});
