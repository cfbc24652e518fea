/**
 * nn.compile on every sample model: the compiled model gives eager's outputs and gradients, on the
 * capture call and on replays (or, where the forward reads data back, falls back to eager and says why).
 */
import { expect } from 'chai';
import { nn, Tensor, rand, tensor, manualSeed, setDefaultDevice, getDefaultDevice, DeviceName } from '../../src';
import { testDevices, expectClose } from '../helpers';
import * as chapter from '../../samples/chapter/models';
import { MLP as MnistMLP, ResNet } from '../../samples/mnist/models';
import { ReverseModel } from '../../samples/transformer/model';

interface Case {
  name: string;
  make: () => nn.Module;
  input: () => Tensor;
  train?: boolean;
  /** the forward reads data back (item()): compile must fall back to eager */
  eager?: boolean;
}

const EAGER_ONLY = new Set(['fixedhidden', 'chimera']); // forward reads data back: while (X.abs().sum().item() > 1)

const CASES: Case[] = [
  ...Object.entries(chapter.CHAPTER_MODELS).map(([name, make]) => ({
    name: `chapter ${name}`,
    make,
    input: () => rand([2, 20]),
    eager: EAGER_ONLY.has(name),
  })),
  { name: 'MNIST MLP (eval)', make: () => new MnistMLP(), input: () => rand([4, 784]) },
  { name: 'MNIST ResNet CNN (train: batch statistics, running stats)', make: () => new ResNet(4), input: () => rand([2, 1, 12, 12]), train: true },
  {
    name: 'Transformer encoder (reverse sample)',
    make: () => new ReverseModel(6, 16),
    input: () =>
      tensor([
        [1, 2, 3, 4, 5, 6],
        [6, 5, 4, 3, 2, 1],
      ]),
  },
];

function twins(c: Case, x: Tensor): [nn.Module, nn.Module] {
  const a = c.make();
  const b = c.make();
  for (const m of [a, b]) {
    m.train(!!c.train);
    m(x); // materialise lazy layers
  }
  b.loadStateDict(a.stateDict());
  return [a, b];
}

function gradsOf(m: nn.Module): Record<string, Tensor | null> {
  return Object.fromEntries(m.namedParameters().map(([n, p]) => [n, p.grad]));
}

describe('graph: nn.compile on every sample model equals eager', () => {
  let previous: DeviceName;
  before(() => (previous = getDefaultDevice()));
  after(() => setDefaultDevice(previous));

  for (const device of testDevices().filter((d) => d !== 'gpu')) {
    describe(device, () => {
      for (const c of CASES) {
        it(c.name, () => {
          setDefaultDevice(device);
          manualSeed(7);
          const x = c.input();
          const [eager, twin] = twins(c, x);
          const compiled = nn.compile(twin);
          for (let call = 0; call < 3; call++) {
            eager.zeroGrad();
            compiled.zeroGrad();
            const ye = eager(x);
            const yc = compiled(x) as Tensor;
            expectClose(yc, ye, 1e-5, 1e-5, `${c.name} output, call ${call}`);
            const w = rand(ye.shape);
            ye.mul(w).sum().backward();
            yc.mul(w).sum().backward();
            const ge = gradsOf(eager);
            const gc = gradsOf(compiled);
            for (const [name, g] of Object.entries(ge)) {
              expect(gc[name], `${name} gradient`).to.not.equal(null);
              expectClose(gc[name]!, g!, 1e-5, 1e-4, `${c.name} grad ${name}, call ${call}`);
            }
          }
          for (const [k, v] of Object.entries(eager.stateDict())) expectClose(compiled.stateDict()[k], v, 1e-5, 1e-5, `state ${k}`);
          if (c.eager) expect(compiled.eagerReason, 'falls back to eager').to.be.a('string');
          else {
            expect(compiled.eagerReason, 'runs compiled').to.equal(null);
            expect(compiled.compileStats.replays, 'replayed the captured graph').to.be.greaterThan(0);
          }
        });
      }
    });
  }
});
