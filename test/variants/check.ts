/**
 * The compile-path probe: compiled once per variant (test/variants/tsconfig.*.json: plain tsc with standard
 * decorators, plain tsc with experimentalDecorators, ttsc with the transformer), run by
 * test/variants/variants.test.ts, which compares what each variant prints. Everything printed except
 * `registration` must be identical across variants.
 *
 *   node dist/variants/<variant>/test/variants/check.js   -> one JSON object on stdout
 */
import { nn, Tensor, tensor, rand, zeros, ones, manualSeed, setDefaultDevice, child, param, buffer } from '../../src';
import { fieldsOf, STATIC_TABLE_KEY, RUNTIME_TABLE, METADATA_KEY } from '../../src/nn/registry';
import { decoratorStats } from '../../src/nn/decorators';
import { CHAPTER_MODELS, MLP, MySequential, FixedHiddenMLP, NestMLP } from '../../samples/chapter/models';

/** API.md's example. */
export class Scale extends nn.Module {
  @param gain = tensor([1.0]);
  @buffer mask = rand([20, 20]);
  forward(x: Tensor): Tensor {
    return x.mul(this.gain);
  }
}

/** Every decorator form: bare and called @buffer, persistent and not, fields assigned in the constructor. */
export class Stats extends nn.Module {
  // declared first, assigned in the constructor: registered first whether fields are defined or assigned
  @param first!: Tensor;
  @buffer({ persistent: false }) scratch = ones([4]);
  @param weight = ones([4]);
  @buffer({ persistent: true }) runningMean = zeros([4]);
  @child proj: nn.Linear;
  @param scale!: Tensor;
  plain = 'not registered';
  constructor() {
    super();
    this.proj = new nn.Linear(4, 4);
    this.scale = tensor([0.5]);
    this.first = tensor([1.5]);
  }
  forward(x: Tensor): Tensor {
    return this.proj(x.mul(this.weight).add(this.runningMean)).mul(this.scale).add(this.first);
  }
}

/** A subclass adds fields after its base's. */
export class WiderMLP extends MLP {
  @child extra = new nn.LazyLinear(3);
  forward(X: Tensor): Tensor {
    return this.extra(super.forward(X));
  }
}

/** Registers 'w' at run time over its own @param declaration (PyTorch's rule: another kind is refused). */
export class Declared extends nn.Module {
  @param w!: Tensor;
  extra!: Tensor; // undecorated and without a value: defined as undefined, or not at all, by the compile path
  constructor(as: 'param' | 'buffer') {
    super();
    if (as === 'param') this.registerParameter('w', ones([2]));
    else this.registerBuffer('w', ones([2]));
    this.registerBuffer('extra', zeros([1]));
  }
}

/** What registering does under each compile path: the registered names, or the error. */
function outcome(make: () => nn.Module): string {
  try {
    const m = make();
    return `params ${m.namedParameters().map(([k]) => k)}; buffers ${m.namedBuffers().map(([k]) => k)}`;
  } catch (e) {
    return (e as Error).message;
  }
}

const classes: Record<string, Function> = { MLP, MySequential, FixedHiddenMLP, NestMLP, Scale, Stats, WiderMLP, Declared };

const builders: Record<string, () => nn.Module> = {
  ...CHAPTER_MODELS,
  scale: () => new Scale(),
  stats: () => new Stats(),
  wider: () => new WiderMLP(),
};

const inputs: Record<string, number[]> = { scale: [3, 20], stats: [3, 4] };

function hasOwn(o: object, k: PropertyKey): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function report(): object {
  setDefaultDevice('cpu');
  const models: Record<string, unknown> = {};
  for (const [name, build] of Object.entries(builders)) {
    manualSeed(0);
    const net = build();
    const lazyBefore = net.namedParameters().map(([k, p]) => [k, p instanceof nn.UninitializedParameter]);
    const X = rand(inputs[name] ?? [2, 20], { requiresGrad: true });
    const y = net(X) as Tensor;
    y.sum().backward();
    const sd = net.stateDict();
    models[name] = {
      lazyBefore,
      namedParameters: net.namedParameters().map(([k, p]) => [k, p.shape, p.requiresGrad]),
      namedBuffers: net.namedBuffers().map(([k, b]) => [k, b.shape, k in sd]),
      stateDictKeys: Object.keys(sd),
      namedModules: net.namedModules().map(([k, m]) => [k, m.constructor.name]),
      outputShape: y.shape,
      output: Array.from(y.dataSync()),
      grads: net.namedParameters().map(([k, p]) => [k, Array.from(p.grad!.dataSync())]),
      inputGrad: Array.from(X.grad!.dataSync()),
      repr: net.toString(),
    };
  }
  // field routing after construction
  const s = new Scale();
  s.gain = tensor([2]);
  let rejected = '';
  try {
    (s as any).gain = 3;
  } catch (e) {
    rejected = (e as Error).message;
  }
  const routing = { reassignedIsParam: s.parameters()[0] === s.gain && s.gain.requiresGrad, rejected };
  const rules = {
    sameKind: outcome(() => new Declared('param')),
    otherKind: outcome(() => new Declared('buffer')),
    plainAttribute: outcome(() => {
      const m = new Scale();
      (m as any).factor = 5;
      return m.registerBuffer('factor', ones([1]));
    }),
  };

  const registration: Record<string, unknown> = {};
  for (const [name, cls] of Object.entries(classes)) {
    const md = (cls as any)[(Symbol as any).metadata];
    registration[name] = {
      staticTable: hasOwn(cls, STATIC_TABLE_KEY) ? (cls as any)[STATIC_TABLE_KEY] : null,
      runtimeTable: hasOwn(cls, RUNTIME_TABLE),
      metadataTable: !!md && hasOwn(md, METADATA_KEY),
      fields: [...fieldsOf(cls).values()],
    };
  }
  return { models, routing, rules, registration, decoratorCalls: decoratorStats.calls };
}

process.stdout.write(JSON.stringify(report()));
