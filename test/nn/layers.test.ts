/**
 * Layers against PyTorch 1.13 (test/fixtures/layers.json from gen_layers.py): each case loads PyTorch's
 * state dict by key, then compares outputs in train and eval mode, input and parameter gradients, and the
 * state after the training step (BatchNorm's running statistics).
 */
import { expect } from 'chai';
import { F, nn, Tensor, tensor, manualSeed, noGrad, zeros, ones, randn } from '../../src';
import { expectClose, testDevices } from '../helpers';
import { golden, stateDictOf, T } from './golden';

type Out = Tensor | [Tensor, Tensor | null];
interface Spec {
  make: () => nn.Module;
  call?: (m: any, ...xs: Tensor[]) => Out;
}

const mha = (m: any, q: Tensor, k: Tensor, v: Tensor, opts = {}) => m(q, k, v, opts);
const SPECS: Record<string, Spec> = {
  linear: { make: () => new nn.Linear(4, 3) },
  embedding: { make: () => new nn.Embedding(10, 4) },
  embedding_pad: { make: () => new nn.Embedding(10, 4, { paddingIdx: 1 }) },
  layernorm: { make: () => new nn.LayerNorm(4) },
  layernorm_2d_noaffine: { make: () => new nn.LayerNorm([3, 4], { elementwiseAffine: false }) },
  layernorm_eps: { make: () => new nn.LayerNorm([2, 3], { eps: 1e-2 }) },
  batchnorm1d: { make: () => new nn.BatchNorm1d(3) },
  batchnorm1d_3d: { make: () => new nn.BatchNorm1d(3, { momentum: 0.3 }) },
  batchnorm2d: { make: () => new nn.BatchNorm2d(3) },
  batchnorm2d_cma: { make: () => new nn.BatchNorm2d(3, { momentum: null }) },
  batchnorm2d_notrack: { make: () => new nn.BatchNorm2d(3, { affine: false, trackRunningStats: false }) },
  mha_self: { make: () => new nn.MultiheadAttention(8, 2), call: (m, x) => mha(m, x, x, x) },
  mha_batchfirst_masks: {
    make: () => new nn.MultiheadAttention(8, 2, { batchFirst: true }),
    call: (m, q, k, v, attnMask, keyPaddingMask) => mha(m, q, k, v, { attnMask, keyPaddingMask }),
  },
  mha_kdim_vdim_perhead: {
    make: () => new nn.MultiheadAttention(8, 4, { kdim: 6, vdim: 5, bias: false }),
    call: (m, q, k, v, attnMask) => mha(m, q, k, v, { attnMask, averageAttnWeights: false }),
  },
  mha_unbatched: { make: () => new nn.MultiheadAttention(6, 3), call: (m, q, kv) => mha(m, q, kv, kv) },
  mha_bias_kv_zero_attn: {
    make: () => new nn.MultiheadAttention(4, 2, { addBiasKv: true, addZeroAttn: true }),
    call: (m, q, kv, keyPaddingMask, attnMask) => mha(m, q, kv, kv, { keyPaddingMask, attnMask }),
  },
  mha_no_weights: { make: () => new nn.MultiheadAttention(4, 1), call: (m, x) => mha(m, x, x, x, { needWeights: false }) },
  encoder_relu: {
    make: () => new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0 }),
    call: (m, x, srcMask) => m(x, { srcMask }),
  },
  encoder_gelu_batchfirst_normfirst: {
    make: () =>
      new nn.TransformerEncoderLayer(8, 4, {
        dimFeedforward: 12,
        dropout: 0,
        activation: 'gelu',
        batchFirst: true,
        normFirst: true,
        layerNormEps: 1e-6,
      }),
    call: (m, x, srcKeyPaddingMask) => m(x, { srcKeyPaddingMask }),
  },
  encoder_stack_norm: {
    make: () => new nn.TransformerEncoder(new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0 }), 2, { norm: new nn.LayerNorm(8) }),
    call: (m, x, mask, kpm) => m(x, mask, kpm),
  },
  conv2d: { make: () => new nn.Conv2d(3, 4, 3, { padding: 1 }) },
  conv2d_strided_grouped: { make: () => new nn.Conv2d(4, 6, [3, 2], { stride: 2, padding: [1, 0], dilation: [1, 2], groups: 2, bias: false }) },
  conv2d_same: { make: () => new nn.Conv2d(2, 3, 4, { padding: 'same' }) },
  conv2d_unbatched: { make: () => new nn.Conv2d(2, 2, 2, { stride: [1, 2] }) },
  maxpool2d: { make: () => new nn.MaxPool2d(2) },
  maxpool2d_pad_ceil: { make: () => new nn.MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }) },
  avgpool2d: { make: () => new nn.AvgPool2d(2) },
  avgpool2d_pad_nocount: { make: () => new nn.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }) },
  adaptiveavgpool2d: { make: () => new nn.AdaptiveAvgPool2d([2, 3]) },
  adaptiveavgpool2d_1: { make: () => new nn.AdaptiveAvgPool2d(1) },
  dropout_eval: { make: () => new nn.Dropout(0.5) },
  dropout_p0: { make: () => new nn.Dropout(0) },
};

interface LayerCase {
  name: string;
  state: Record<string, any>;
  inputs: any[];
  gradInputs: number[];
  train?: { outputs: any[]; gradWeights: any[]; inputGrads: Record<string, any>; paramGrads: Record<string, any>; stateAfter: Record<string, any> };
  eval: { outputs: any[] };
}

const cases = golden<{ cases: LayerCase[] }>('layers.json').cases;
const outputs = (o: Out): (Tensor | null)[] => (Array.isArray(o) ? o : [o]);

function runCase(c: LayerCase, device: Parameters<typeof T>[1]): void {
  const spec = SPECS[c.name];
  const m = spec.make().to(device);
  m.loadStateDict(stateDictOf(c.state, device));
  const call = spec.call ?? ((mod: any, ...xs: Tensor[]) => mod(...xs));
  const what = (s: string) => `${c.name} ${s}`;
  if (c.train) {
    m.train();
    const xs = c.inputs.map((v, i) => T(v, device, c.gradInputs.includes(i)));
    const outs = outputs(call(m, ...xs));
    expect(outs.length, what('number of outputs')).to.equal(c.train.outputs.length);
    let loss: Tensor | null = null;
    outs.forEach((o, k) => {
      const want = c.train!.outputs[k];
      if (want === null) return void expect(o, what(`output ${k}`)).to.equal(null);
      expectClose(o!, want, 1e-4, 1e-4, what(`train output ${k}`));
      const term = o!.mul(T(c.train!.gradWeights[k], device)).sum();
      loss = loss ? loss.add(term) : term;
    });
    if (loss && (loss as Tensor).requiresGrad) (loss as Tensor).backward();
    for (const [i, g] of Object.entries(c.train.inputGrads)) expectClose(xs[Number(i)].grad!, g, 1e-4, 1e-4, what(`grad of input ${i}`));
    const params = Object.fromEntries(m.namedParameters());
    expect(Object.keys(params).sort(), what('parameter names')).to.deep.equal(Object.keys(c.train.paramGrads).sort());
    for (const [k, g] of Object.entries(c.train.paramGrads)) expectClose(params[k].grad!, g, 1e-4, 1e-4, what(`grad of ${k}`));
    const after = m.stateDict();
    expect(Object.keys(after), what('state keys after training step')).to.deep.equal(Object.keys(c.train.stateAfter));
    for (const [k, v] of Object.entries(c.train.stateAfter)) expectClose(after[k], v, 1e-4, 1e-4, what(`state ${k} after training step`));
  }
  m.eval();
  const outs = outputs(noGrad(() => call(m, ...c.inputs.map((v) => T(v, device)))));
  c.eval.outputs.forEach((want, k) => {
    if (want === null) return void expect(outs[k], what(`eval output ${k}`)).to.equal(null);
    expectClose(outs[k]!, want, 1e-4, 1e-4, what(`eval output ${k}`));
  });
}

describe('nn: layers vs PyTorch', () => {
  it('every golden case has a spec', () => {
    expect(cases.map((c) => c.name).filter((n) => !SPECS[n])).to.deep.equal([]);
  });

  it("state-dict keys equal PyTorch's (in order)", () => {
    for (const c of cases) expect(Object.keys(SPECS[c.name].make().stateDict()), c.name).to.deep.equal(Object.keys(c.state));
  });

  for (const device of testDevices()) {
    describe(device, () => {
      for (const c of cases) it(c.name, () => runCase(c, device));
    });
  }
});

describe('nn: layer behaviour', () => {
  it('Dropout: seeded mask, kept values scaled by 1/(1-p), identity in eval, p=1 zeroes', () => {
    const d = new nn.Dropout(0.25);
    const x = ones([4000]);
    manualSeed(5);
    const y1 = d(x).dataSync();
    manualSeed(5);
    const y2 = d(x).dataSync();
    expect(Array.from(y1)).to.deep.equal(Array.from(y2));
    const zerosFrac = y1.filter((v) => v === 0).length / y1.length;
    expect(zerosFrac).to.be.within(0.22, 0.28);
    expect(y1.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).to.equal(true);
    d.eval();
    expect(d(x)).to.equal(x);
    expectClose(F.dropout(x, 1, true), zeros([4000]));
    expect(F.dropout(x, 0.5, false)).to.equal(x);
    expect(() => new nn.Dropout(1.5)).to.throw(/dropout probability has to be between 0 and 1, but got 1.5/);
  });

  it('Dropout gradient flows only through kept elements', () => {
    const x = ones([200], { requiresGrad: true });
    const y = F.dropout(x, 0.5);
    y.sum().backward();
    expectClose(x.grad!, y.detach());
  });

  it('BatchNorm: eval uses running stats; buffers are kept across train steps; num_batches_tracked counts', () => {
    const bn = new nn.BatchNorm1d(2);
    const rm = bn.runningMean!;
    const x = tensor([
      [1, 2],
      [3, 6],
      [5, 10],
    ]);
    bn(x);
    bn(x);
    expect(bn.runningMean).to.equal(rm);
    expectClose(bn.stateDict().num_batches_tracked, 2);
    // running mean after two updates of momentum 0.1 towards [3, 6]
    expectClose(rm, [3 * 0.19, 6 * 0.19]);
    bn.eval();
    const y = bn(tensor([[0, 0]]));
    const rv = bn.runningVar!.dataSync();
    expectClose(y, [(0 - 0.57) / Math.sqrt(rv[0] + 1e-5), (0 - 1.14) / Math.sqrt(rv[1] + 1e-5)]);
  });

  it('input checks name the module path and the shapes', () => {
    const net = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.BatchNorm2d(4));
    expect(() => net(zeros([1, 2, 5, 5]))).to.throw(/0 \(Conv2d\): expected input \[N, 3, H, W\] \(3 channels\), got \[1, 2, 5, 5\]/);
    expect(() => new nn.BatchNorm2d(4)(zeros([2, 4, 3]))).to.throw(/BatchNorm2d: expected 4D input \[N, C, H, W\], got 3D input \[2, 4, 3\]/);
    expect(() => new nn.BatchNorm1d(4)(zeros([2, 3]))).to.throw(/BatchNorm1d: expected input \[N, 4, \*\]/);
    expect(() => new nn.BatchNorm1d(3)(zeros([1, 3]))).to.throw(/expected more than 1 value per channel when training, got input \[1, 3\]/);
    expect(() => new nn.LayerNorm([3, 4])(zeros([2, 4, 3]))).to.throw(/LayerNorm: expected input \[\*, 3, 4\], got \[2, 4, 3\]/);
    const ids = tensor([[0, 12]], { device: 'cpu' });
    expect(() => new nn.Embedding(10, 3).to('cpu')(ids)).to.throw(/Embedding: index 12 is out of range for 10 embeddings/);
    const attn = new nn.MultiheadAttention(8, 2);
    expect(() => attn(zeros([3, 2, 6]), zeros([3, 2, 8]), zeros([3, 2, 8]))).to.throw(
      /MultiheadAttention: expected input query \[L, N, E\] with E = 8, got \[3, 2, 6\]/,
    );
    expect(() => attn(zeros([3, 2, 8]), zeros([4, 2, 8]), zeros([4, 2, 8]), { attnMask: zeros([3, 3]) })).to.throw(
      /2D attnMask is \[3, 3\], but should be \[3, 4\]/,
    );
    expect(() => new nn.MultiheadAttention(10, 3)).to.throw(/embedDim 10 must be divisible by numHeads 3/);
    expect(() => new nn.MaxPool2d(2)(zeros([4, 4]))).to.throw(/MaxPool2d: expected 3D \[C, H, W\] or 4D \[N, C, H, W\] input, got \[4, 4\]/);
  });

  it('LazyConv2d infers inChannels on the first call; loading before that throws', () => {
    const lazy = new nn.LazyConv2d(4, 3, { padding: 1 });
    expect(() => lazy.loadStateDict({ weight: zeros([4, 2, 3, 3]), bias: zeros([4]) })).to.throw(/uninitialized lazy parameter/);
    const y = lazy(randn([1, 2, 5, 5]));
    expect(y.shape).to.deep.equal([1, 4, 5, 5]);
    expect(lazy.weight.shape).to.deep.equal([4, 2, 3, 3]);
    expect(lazy.inChannels).to.equal(2);
    const bound = 1 / Math.sqrt(2 * 9);
    expect(Array.from(lazy.bias!.dataSync()).every((v) => Math.abs(v) <= bound)).to.equal(true);
  });

  it('default initialisation follows PyTorch (ranges, constants)', () => {
    const conv = new nn.Conv2d(4, 8, 3);
    const bound = 1 / Math.sqrt(4 * 9);
    expect(Array.from(conv.weight.dataSync()).every((v) => Math.abs(v) <= bound + 1e-7)).to.equal(true);
    const mha = new nn.MultiheadAttention(8, 2);
    expectClose(mha.in_proj_bias!, zeros([24]));
    expectClose(mha.out_proj.bias!, zeros([8]));
    const xav = Math.sqrt(6 / (24 + 8));
    expect(Array.from(mha.in_proj_weight!.dataSync()).every((v) => Math.abs(v) <= xav)).to.equal(true);
    const bn = new nn.BatchNorm2d(3);
    expectClose(bn.weight!, [1, 1, 1]);
    expectClose(bn.runningVar!, [1, 1, 1]);
    const emb = new nn.Embedding(5, 3, { paddingIdx: 2 });
    expectClose(emb.weight.slice(0, 2, 3), zeros([1, 3]));
  });

  it('Embedding.fromPretrained is frozen by default; generateSquareSubsequentMask is causal', () => {
    const e = nn.Embedding.fromPretrained(
      tensor([
        [1, 2],
        [3, 4],
      ]),
    );
    expect(e.weight.requiresGrad).to.equal(false);
    expectClose(e(tensor([1, 0])), [
      [3, 4],
      [1, 2],
    ]);
    expect(nn.generateSquareSubsequentMask(3).toArray()).to.deep.equal([
      [0, -Infinity, -Infinity],
      [0, 0, -Infinity],
      [0, 0, 0],
    ]);
  });

  it('repr reads like PyTorch', () => {
    const s = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }).toString();
    expect(s).to.contain('(self_attn): MultiheadAttention(');
    expect(s).to.contain('(out_proj): Linear(inFeatures=8, outFeatures=8, bias=true)');
    expect(s).to.contain('(norm1): LayerNorm([8], eps=0.00001, elementwiseAffine=true)');
    expect(new nn.Conv2d(3, 4, 3, { padding: 1 }).toString()).to.equal('Conv2d(3, 4, kernelSize=[3, 3], stride=[1, 1], padding=[1, 1])');
    expect(new nn.TransformerEncoderLayer(8, 2, 16).linear1.outFeatures).to.equal(16);
    const enc = new nn.TransformerEncoder(new nn.TransformerEncoderLayer(8, 2, 16), 3);
    expect(Object.keys(enc.stateDict()).filter((k) => k.endsWith('in_proj_weight'))).to.deep.equal(
      [0, 1, 2].map((i) => `layers.${i}.self_attn.in_proj_weight`),
    );
  });
});
