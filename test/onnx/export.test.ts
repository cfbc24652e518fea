/** onnx.exportBytes / exportModel, checked by running the exported models in ONNX Runtime. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { nn, F, Tensor, child, manualSeed, randn, rand, tensor, noGrad, onnx, ops } from '../../src';
import { ResNet } from '../../samples/mnist/models';
import { ReverseModel, VOCAB } from '../../samples/transformer/model';
import { expectSameAsOrt, runOrt, maxAbsDiff } from './ort';

class FunctionalNet extends nn.Module {
  @child a = new nn.Linear(6, 8);
  @child b = new nn.Linear(8, 4);
  forward(x: Tensor): Tensor {
    const h = F.gelu(this.a(x));
    const t = ops.tanh(h).mul(2).sub(ops.sigmoid(h)).div(1.5);
    const c = ops.cat([t, ops.clamp(h, -0.5, 0.5)], 1); // [N, 16]
    const r = ops
      .reshape(c, [-1, 2, 8])
      .permute([0, 2, 1])
      .sum(2)
      .add(ops.maximum(ops.slice(c, 1, 0, 8), 0.1)); // [N, 8]
    return F.logSoftmax(this.b(ops.where(ops.gt(r, 0), r, ops.exp(r).mul(-1))), -1);
  }
}

describe('onnx export (checked in ONNX Runtime)', function () {
  this.timeout(120_000);

  it('an MLP (Sequential of Linear / ReLU / GELU / Tanh / Sigmoid / Dropout / Softmax) matches tsnn', async () => {
    manualSeed(1);
    const mlp = new nn.Sequential(
      new nn.Linear(10, 32),
      new nn.ReLU(),
      new nn.Dropout(0.3),
      new nn.Linear(32, 16),
      new nn.GELU('tanh'),
      new nn.Linear(16, 16),
      new nn.Tanh(),
      new nn.Linear(16, 8),
      new nn.Sigmoid(),
      new nn.Linear(8, 5),
      new nn.Softmax(-1),
    );
    await expectSameAsOrt(
      mlp,
      [randn([4, 10])],
      [randn([4, 10]), randn([4, 10]).mul(5)].map((x) => [x]),
    );
  });

  it('a user module written with functional ops (gelu, cat, reshape, permute, sum, where, logSoftmax...) matches tsnn', async () => {
    manualSeed(2);
    await expectSameAsOrt(new FunctionalNet(), [randn([3, 6])], [[randn([3, 6])], [randn([3, 6]).mul(3)]]);
  });

  it('the MNIST ResNet sample with BatchNorm in eval mode (running statistics) matches tsnn', async () => {
    manualSeed(3);
    const net = new ResNet(8);
    // a few training-mode forwards give the BatchNorm layers non-trivial running statistics
    noGrad(() => {
      for (let k = 0; k < 3; k++) net(randn([4, 1, 28, 28]).mul(2).add(0.5));
    });
    const bn = net.stem.at(1) as nn.BatchNorm2d;
    expect(Math.abs(bn.runningMean!.dataSync()[0])).to.be.greaterThan(1e-3);
    net.train();
    const bytes = await expectSameAsOrt(net, [rand([2, 1, 28, 28])], [[rand([2, 1, 28, 28])], [randn([2, 1, 28, 28])]]);
    const opTypes = onnx.decodeModel(bytes).graph.node.map((n: any) => n.op_type);
    expect(opTypes.filter((t: string) => t === 'BatchNormalization')).to.have.length(6);
    expect(opTypes).to.include.members(['Conv', 'MaxPool', 'GlobalAveragePool']);
  });

  it('the Transformer encoder sample (Embedding, learned positions, TransformerEncoder, head) matches tsnn', async () => {
    manualSeed(4);
    const model = new ReverseModel(8);
    const tokens = () => tensor(Array.from({ length: 3 }, () => Array.from({ length: 8 }, () => Math.floor(Math.random() * VOCAB))));
    const bytes = await expectSameAsOrt(model, [tokens()], [[tokens()], [tokens()]]);
    const opTypes = onnx.decodeModel(bytes).graph.node.map((n: any) => n.op_type);
    expect(opTypes.filter((t: string) => t === 'LayerNormalization')).to.have.length(4);
    expect(opTypes).to.include.members(['Gather', 'Softmax', 'MatMul']);
  });

  it('a post-norm TransformerEncoderLayer (seq-first, GELU, dropout) and MultiheadAttention weights match tsnn', async () => {
    manualSeed(5);
    const layer = new nn.TransformerEncoderLayer(16, 2, { dimFeedforward: 24, activation: 'gelu', dropout: 0.2 });
    await expectSameAsOrt(layer, [randn([5, 2, 16])], [[randn([5, 2, 16])]]);
    class Attn extends nn.Module {
      @child mha = new nn.MultiheadAttention(12, 3, { batchFirst: true });
      forward(q: Tensor, kv: Tensor): Tensor[] {
        const [out, w] = this.mha(q, kv, kv);
        return [out, w!];
      }
    }
    const attn = new Attn();
    const q = randn([2, 4, 12]);
    const kv = randn([2, 6, 12]);
    const bytes = onnx.exportBytes(attn, [q, kv]);
    const got = await runOrt(bytes, { input_0: q, input_1: kv });
    const [out, w] = noGrad(() => attn(q, kv));
    expect(maxAbsDiff(got.output_0.data, out.dataSync())).to.be.at.most(1e-4);
    expect(got.output_1.dims).to.deep.equal([2, 4, 6]);
    expect(maxAbsDiff(got.output_1.data, w.dataSync())).to.be.at.most(1e-4);
  });

  it('nn.compile(model) exports the model it wraps (after it has replayed a captured graph)', async () => {
    manualSeed(7);
    const lin = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU());
    const compiled = nn.compile(lin);
    for (let k = 0; k < 3; k++) noGrad(() => compiled(randn([2, 3])));
    await expectSameAsOrt(compiled, [randn([2, 3])], [[randn([2, 3])]]);
  });

  it('exportModel writes a file that decodes with the vendored schema: IR / opset, input and output names and shapes', async () => {
    manualSeed(6);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-onnx-'));
    try {
      const file = path.join(dir, 'mlp.onnx');
      const net = new nn.Sequential(new nn.Linear(7, 5), new nn.ReLU(), new nn.Linear(5, 3));
      await onnx.exportModel(net, [randn([2, 7])], file, { inputNames: ['features'], outputNames: ['logits'] });
      const m = onnx.decodeModel(fs.readFileSync(file));
      expect(m.ir_version).to.equal(onnx.IR_VERSION);
      expect(m.opset_import).to.deep.equal([{ domain: '', version: onnx.OPSET_VERSION }]);
      const dims = (v: any) => v.type.tensor_type.shape.dim.map((d: any) => d.dim_value);
      expect(m.graph.input.map((v: any) => [v.name, v.type.tensor_type.elem_type, dims(v)])).to.deep.equal([['features', 1, [2, 7]]]);
      expect(m.graph.output.map((v: any) => [v.name, dims(v)])).to.deep.equal([['logits', [2, 3]]]);
      // parameters are initializers under their state-dict names
      const inits = new Map<string, any>(m.graph.initializer.map((t: any) => [t.name, t]));
      expect(inits.get('0.weight').dims).to.deep.equal([5, 7]);
      const w = new Float32Array(new Uint8Array(inits.get('2.bias').raw_data).buffer);
      expect(Array.from(w)).to.deep.equal(Array.from(net.stateDict()['2.bias'].dataSync()));
      expect(m.graph.node.map((n: any) => n.op_type)).to.include.members(['MatMul', 'Relu', 'Add']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('onnx export errors', () => {
  it('a layer ONNX cannot express names its module path', () => {
    const net = new nn.Sequential(new nn.Conv2d(1, 2, 3), new nn.Sequential(new nn.ReLU(), new nn.AdaptiveAvgPool2d(3)));
    expect(() => onnx.exportBytes(net, [randn([1, 1, 9, 9])])).to.throw(
      /module '1\.1' \(AdaptiveAvgPool2d\): adaptiveAvgPool2d from 7x7 to 3x3 has uneven windows/,
    );
  });

  it('a value computed from the inputs outside the traced ops (under noGrad) is an error naming the module, not a frozen constant', () => {
    class Sneaky extends nn.Module {
      forward(x: Tensor): Tensor {
        return ops.add(
          x,
          noGrad(() => x.mul(2)),
        );
      }
    }
    class Outer extends nn.Module {
      @child inner = new Sneaky();
      @child lin = new nn.Linear(3, 3);
      forward(x: Tensor): Tensor {
        return this.inner(this.lin(x));
      }
    }
    expect(() => onnx.exportBytes(new Outer(), [randn([2, 3])])).to.throw(
      /module 'inner' \(Sneaky\): op 'add' reads a tensor of shape \[2, 3\] computed from the inputs/,
    );
  });

  it('random draws and in-place writes into traced values are refused with the reason', () => {
    class Noisy extends nn.Module {
      forward(x: Tensor): Tensor {
        return x.add(randn(x.shape));
      }
    }
    expect(() => onnx.exportBytes(new Noisy(), [randn([2, 3])])).to.throw(/draws random numbers/);
    class Fill extends nn.Module {
      @child lin = new nn.Linear(3, 3);
      forward(x: Tensor): Tensor {
        const h = this.lin(x);
        const y = h.mul(1);
        noGrad(() => h.fill_(0));
        return y.add(h);
      }
    }
    expect(() => onnx.exportBytes(new Fill(), [randn([2, 3])])).to.throw(
      /the model \(Fill\): op 'add' reads a tensor of shape \[2, 3\] that was modified in place/,
    );
  });
});
