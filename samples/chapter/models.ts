/**
 * The models of d2l's "Layers and Modules" chapter, written with tsnn. Shared by the samples
 * (samples/chapter/*.ts), the PyTorch-agreement test (test/nn/chapter.test.ts) and the compile-path
 * variants (test/variants/), so every one of them exercises exactly this source.
 */
import { nn, F, Tensor, child, buffer, rand } from '../../src';

/** `nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))` */
export function makeSequential(): nn.Sequential {
  return new nn.Sequential(new nn.LazyLinear(256), new nn.ReLU(), new nn.LazyLinear(10));
}

/** A hand-written MLP: one hidden layer of 256 units, 10 outputs. */
export class MLP extends nn.Module {
  @child hidden = new nn.LazyLinear(256);
  @child out = new nn.LazyLinear(10);

  forward(X: Tensor): Tensor {
    return this.out(F.relu(this.hidden(X)));
  }
}

/** Sequential written by hand: children registered under '0', '1', ... with addModule. */
export class MySequential extends nn.Module {
  constructor(...modules: nn.Module[]) {
    super();
    modules.forEach((m, i) => this.addModule(String(i), m));
  }

  forward(X: Tensor): Tensor {
    for (const m of this.children()) X = m(X);
    return X;
  }
}

/**
 * A constant (non-trainable) weight, one Linear applied twice (shared parameters) and Python-style
 * control flow that depends on the data.
 */
export class FixedHiddenMLP extends nn.Module {
  @buffer randWeight = rand([20, 20]);
  @child linear = new nn.LazyLinear(20);

  forward(X: Tensor): Tensor {
    X = this.linear(X);
    X = F.relu(X.matmul(this.randWeight).add(1));
    X = this.linear(X);
    while (X.abs().sum().item() > 1) X = X.div(2);
    return X.sum();
  }
}

/** Modules nest: a Sequential and a Linear inside a Module. */
export class NestMLP extends nn.Module {
  @child net = new nn.Sequential(new nn.LazyLinear(64), new nn.ReLU(), new nn.LazyLinear(32), new nn.ReLU());
  @child linear = new nn.LazyLinear(16);

  forward(X: Tensor): Tensor {
    return this.linear(this.net(X));
  }
}

/** `nn.Sequential(NestMLP(), nn.LazyLinear(20), FixedHiddenMLP())` */
export function makeChimera(): nn.Sequential {
  return new nn.Sequential(new NestMLP(), new nn.LazyLinear(20), new FixedHiddenMLP());
}

/** Every model of the chapter by name (the keys of the PyTorch fixture test/fixtures/chapter.json). */
export const CHAPTER_MODELS: Record<string, () => nn.Module> = {
  sequential: makeSequential,
  mlp: () => new MLP(),
  mysequential: () => new MySequential(new nn.LazyLinear(256), new nn.ReLU(), new nn.LazyLinear(10)),
  fixedhidden: () => new FixedHiddenMLP(),
  nestmlp: () => new NestMLP(),
  chimera: makeChimera,
};

/** Name, shape and element count of every parameter, and the total (a torchinfo-like table). */
export function parameterTable(net: nn.Module): string {
  const rows = net.namedParameters().map(([name, p]) => [name, `[${p.shape.join(', ')}]`, String(p.numel())]);
  const total = rows.reduce((n, r) => n + Number(r[2]), 0);
  const head = ['name', 'shape', 'count'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 2 ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line), `total: ${total} parameters`].join('\n');
}
