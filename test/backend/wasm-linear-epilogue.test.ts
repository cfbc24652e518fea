/**
 * The direct webasm linear's epilogue and output arrays (src/backend/wasm/epilogue-kernel.ts, out-pool.ts):
 * bias (+ relu, fused by nn.compile) applied in the arena against the gpu.js reference path
 * (wasmMatmul off) and float64; the same bits as the unfused eager form; released outputs reused without
 * stale packed panels, gpu.js webasm kernel outputs too; arrays a caller handed in never reused.
 */
import { expect } from 'chai';
import { nn, noGrad, ops, optim, Tensor, tensor, F } from '../../src';
import { outPoolStats } from '../../src/backend/wasm/out-pool';
import { backendFor } from '../../src/backend/devices';
import { directAvailable, withDirect } from './wasm-direct';

const available = directAvailable;

/** Deterministic values in [-1, 1), some exactly 0. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = i % 17 === 5 ? 0 : s / 2 ** 31 - 1;
  }
  return out;
}

function rand(shape: number[], seed: number): Tensor {
  return tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  )
    .reshape(shape)
    .to('webasm');
}

/** relu?(x W^T + b) in float64 from the f32 values, with the bound (K + 2) 2^-23 sum |x||w| + |b| 2^-24 per cell. */
function linearRef(x: Float32Array, w: Float32Array, b: Float32Array, M: number, K: number, N: number, relu: boolean) {
  const value = new Float64Array(M * N);
  const bound = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const p = x[m * K + k] * w[n * K + k];
        s += p;
        abs += Math.abs(p);
      }
      value[m * N + n] = relu ? Math.max(s + b[n], 0) : s + b[n];
      bound[m * N + n] = (K + 2) * 2 ** -23 * abs + Math.abs(b[n]) * 2 ** -23 + 1e-30;
    }
  return { value, bound };
}

function mlp(inF: number, hidden: number, out: number): { net: nn.Module; l1: nn.Linear } {
  const l1 = new nn.Linear(inF, hidden);
  const net = new nn.Sequential(l1, new nn.ReLU(), new nn.Linear(hidden, out)).to('webasm');
  noGrad(() => {
    net.parameters().forEach((p, i) => p.copy_(rand(p.shape, 100 + i)));
  });
  return { net, l1 };
}

(available ? describe : describe.skip)('backend: direct webasm linear epilogue and output reuse', function () {
  this.timeout(300000);

  // shapes: rows and columns off the 4x8 tile, N below a vector, K past one K block (512)
  const shapes = [
    [13, 37, 29],
    [4, 600, 10],
    [1, 9, 3],
    [9, 16, 8],
  ];

  it('nn.compile fuses linear -> relu into the direct kernel; float64 bound, gpu.js reference, and the same bits as eager', () => {
    for (const [M, K, N] of shapes) {
      const x = rand([M, K], 7);
      const { net, l1: lin } = withDirect(true, () => mlp(K, N, 5));
      const compiled = nn.compile(net);
      const hidden = (input: Tensor) => ops.relu(lin.forward(input));
      // the fused kernel's output: the compiled first two layers alone
      const firstC = nn.compile(new nn.Sequential(lin, new nn.ReLU()));
      const got = withDirect(true, () => firstC(x).dataSync().slice());
      expect(firstC.explain({ print: false })).to.match(/linear \+ relu/);
      const ref = linearRef(x.dataSync(), lin.weight.dataSync(), lin.bias!.dataSync(), M, K, N, true);
      for (let i = 0; i < got.length; i++) {
        const err = Math.abs(got[i] - ref.value[i]);
        if (!(err <= ref.bound[i])) expect.fail(`[${M}x${K}x${N}] cell ${i}: ${got[i]}, float64 ${ref.value[i]} (bound ${ref.bound[i]})`);
      }
      // eager on the direct path (bias in the kernel, relu as its own gpu.js kernel): identical bits
      const eager = withDirect(true, () => hidden(x).dataSync().slice());
      expect(Array.from(got)).to.deep.equal(Array.from(eager));
      // the gpu.js reference path
      const gpujs = withDirect(false, () => hidden(x).dataSync().slice());
      for (let i = 0; i < got.length; i++) expect(got[i]).to.be.closeTo(gpujs[i], 2 * ref.bound[i] + 1e-7);
      // the whole model, twice (a replay)
      for (let s = 0; s < 2; s++) {
        const want = withDirect(false, () => net.forward(x).dataSync().slice());
        const y = withDirect(true, () => compiled(x).dataSync().slice());
        for (let i = 0; i < y.length; i++) expect(y[i]).to.be.closeTo(want[i], 1e-4 * (1 + Math.abs(want[i])));
      }
    }
  });

  it("a compiled training step with the fused linear -> relu gives the gpu.js path's losses and weights", () => {
    const run = (direct: boolean, compile: boolean) =>
      withDirect(direct, () => {
        const { net } = mlp(37, 29, 10);
        const m = compile ? nn.compile(net) : net;
        const opt = optim.SGD(net.parameters(), { lr: 0.1 });
        const x = rand([13, 37], 3);
        const y = tensor(
          Array.from({ length: 13 }, (_, i) => i % 10),
          { device: 'webasm' },
        );
        const losses: number[] = [];
        for (let s = 0; s < 4; s++) {
          opt.zeroGrad();
          const loss = F.crossEntropy(m(x), y);
          loss.backward();
          opt.step();
          losses.push(loss.item());
        }
        if (compile) expect((m as any).explain({ print: false })).to.match(/linear \+ relu/);
        return { losses, w: net.parameters().map((p) => p.dataSync().slice()) };
      });
    const d = run(true, true);
    const g = run(false, false);
    d.losses.forEach((l, i) => expect(l).to.be.closeTo(g.losses[i], 1e-5 * (1 + Math.abs(g.losses[i]))));
    d.w.forEach((w, i) => w.forEach((v, j) => expect(v, `param ${i} cell ${j}`).to.be.closeTo(g.w[i][j], 1e-5 * (1 + Math.abs(g.w[i][j])))));
  });

  it('bias without relu and K = 0 (the output is the bias) match the gpu.js path', () => {
    for (const [M, K, N] of [...shapes, [3, 0, 5]]) {
      const run = (direct: boolean) =>
        withDirect(direct, () => {
          const x = rand([M, K], 11);
          const w = rand([N, K], 12);
          const b = rand([N], 13);
          return [
            F.linear(x, w, b).dataSync().slice(),
            ops
              .relu(F.linear(x, w, b))
              .dataSync()
              .slice(),
          ];
        });
      const d = run(true);
      const g = run(false);
      d.forEach((v, i) => v.forEach((y, j) => expect(y, `[${M}x${K}x${N}] ${i} cell ${j}`).to.be.closeTo(g[i][j], 1e-5 * (1 + Math.abs(g[i][j])))));
    }
  });

  it('a released output array is reused, and panels packed from its old contents are not', () => {
    withDirect(true, () => {
      const x = rand([6, 12], 20);
      // r: a direct matmul's output, then read as B three times (packed and kept from the second use)
      const r = ops.matmul(rand([12, 5], 21), rand([5, 20], 22));
      const first = backendFor('webasm').read(r.storage.buffer);
      for (let i = 0; i < 3; i++) ops.matmul(x, r).dataSync();
      r.dispose();
      const reused = outPoolStats.reused;
      // a new product of r's size gets r's array back, with new contents
      const r2 = ops.matmul(rand([12, 5], 23), rand([5, 20], 24));
      expect(outPoolStats.reused).to.equal(reused + 1);
      expect(backendFor('webasm').read(r2.storage.buffer)).to.equal(first);
      const got = ops.matmul(x, r2).dataSync();
      const want = withDirect(false, () => ops.matmul(x, r2).dataSync());
      for (let i = 0; i < got.length; i++) expect(got[i], `cell ${i}`).to.be.closeTo(want[i], 1e-5 * (1 + Math.abs(want[i])));
    });
  });

  it("a gpu.js webasm kernel's released output is reused too, with the new kernel's values", () => {
    const x = rand([300], 50);
    const y = ops.relu(x);
    const first = backendFor('webasm').read(y.storage.buffer);
    y.dispose();
    const reused = outPoolStats.reused;
    const z = ops.exp(rand([300], 51));
    expect(outPoolStats.reused).to.equal(reused + 1);
    expect(backendFor('webasm').read(z.storage.buffer)).to.equal(first);
    const src = values(300, 51);
    const got = z.dataSync();
    for (let i = 0; i < 300; i++) expect(got[i], `cell ${i}`).to.be.closeTo(Math.exp(src[i]), 1e-6 * Math.exp(src[i]));
  });

  it('data() of an output disposed right after the call still gives its values (the array is reused at once)', async () => {
    const a = rand([8, 6], 40);
    const b = rand([6, 10], 41);
    const y = withDirect(true, () => ops.matmul(a, b));
    const want = y.dataSync();
    const pending = y.data();
    y.dispose();
    withDirect(true, () => ops.matmul(rand([8, 6], 42), rand([6, 10], 43)));
    expect(Array.from(await pending)).to.deep.equal(Array.from(want));
  });

  it('never reuses an array a caller handed in, nor an output the collector owns (no release)', () => {
    withDirect(true, () => {
      const data = values(12 * 20, 30);
      const copy = data.slice();
      const t = Tensor.fromArray(data, [12, 20], 'webasm');
      t.dispose();
      const kept = ops.matmul(rand([12, 5], 31), rand([5, 20], 32));
      expect(backendFor('webasm').read(kept.storage.buffer)).to.not.equal(data);
      for (let i = 0; i < 3; i++) ops.matmul(rand([12, 5], 33 + i), rand([5, 20], 34)).dataSync();
      expect(Array.from(data)).to.deep.equal(Array.from(copy));
      // `kept` was never released: its values stay as computed
      const again = ops.matmul(rand([12, 5], 31), rand([5, 20], 32)).dataSync();
      expect(Array.from(kept.dataSync())).to.deep.equal(Array.from(again));
    });
  });
});
