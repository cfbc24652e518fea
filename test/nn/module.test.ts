/**
 * nn.Module: every method of API.md's nn.Module section, on small models written the way a PyTorch
 * user would write them (decorators, addModule, containers, lazy layers).
 */
import { expect } from 'chai';
import {
  nn,
  F,
  Tensor,
  tensor,
  rand,
  zeros,
  ones,
  manualSeed,
  child,
  param,
  buffer,
  noGrad,
  getDefaultDevice,
  setDefaultDevice,
  DeviceName,
} from '../../src';
import { backendFor } from '../../src/backend/devices';
import { testDevices, expectClose, checkGrad } from '../helpers';
import { MLP, NestMLP, FixedHiddenMLP, makeChimera } from '../../samples/chapter/models';

class Scale extends nn.Module {
  @param gain = tensor([1.0]);
  @buffer mask = rand([20, 20]);
  forward(x: Tensor): Tensor {
    return x.mul(this.gain);
  }
}

class WithStats extends nn.Module {
  @buffer runningMean = zeros([3]);
  @buffer({ persistent: false }) scratch = ones([3]);
  @param weight = ones([3]);
  forward(x: Tensor): Tensor {
    return x.mul(this.weight).add(this.runningMean);
  }
}

/** Two Linear layers that share one weight tensor (tied), and one Linear registered twice. */
class Tied extends nn.Module {
  @child a = new nn.Linear(4, 4);
  @child b = new nn.Linear(4, 4);
  @child again = this.a;
  constructor() {
    super();
    this.b.weight = this.a.weight;
  }
  forward(x: Tensor): Tensor {
    return this.again(this.b(this.a(x)));
  }
}

const values = (t: Tensor) => Array.from(t.dataSync());
const snapshot = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, values(t)]));
const names = (pairs: [string, unknown][]) => pairs.map(([k]) => k);
/** Every parameter and buffer (non-persistent too) as raw float32 bits, so -0, NaN payloads etc. count. */
const bits = (m: nn.Module) => [...m.namedParameters(), ...m.namedBuffers()].map(([k, t]) => [k, Array.from(new Uint32Array(t.dataSync().buffer))]);

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, got none');
}

describe('nn.Module', () => {
  beforeEach(() => manualSeed(0));

  describe('parameters and buffers', () => {
    it('namedParameters in registration order, recursively, with PyTorch names', () => {
      const net = new MLP();
      net(rand([2, 20]));
      expect(names(net.namedParameters())).to.deep.equal(['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']);
      expect(net.parameters()).to.have.length(4);
      expect(net.parameters()[0]).to.equal(net.hidden.weight);
      expect(net.parameters().every((p) => p.requiresGrad && p.isLeaf)).to.equal(true);
      expect(names(net.namedParameters({ recurse: false }))).to.deep.equal([]);
      expect(names(net.hidden.namedParameters({ recurse: false }))).to.deep.equal(['weight', 'bias']);
    });

    it('a parameter shared by two places is listed once, under its first name', () => {
      const net = new Tied();
      expect(names(net.namedParameters())).to.deep.equal(['a.weight', 'a.bias', 'b.bias']);
      expect(net.parameters()).to.have.length(3);
      // the state dict keeps every name, like PyTorch's
      expect(Object.keys(net.stateDict())).to.deep.equal(['a.weight', 'a.bias', 'b.weight', 'b.bias', 'again.weight', 'again.bias']);
      const shared = new nn.Linear(3, 3);
      const seq = new nn.Sequential(shared, new nn.ReLU(), shared);
      expect(names(seq.namedParameters())).to.deep.equal(['0.weight', '0.bias']);
      expect(seq.children()).to.have.length(2);
      expect(names(seq.namedModules())).to.deep.equal(['', '0', '1']);
    });

    it('@param makes a trainable leaf, @buffer a fixed tensor; both are in the state dict', () => {
      const s = new Scale();
      expect(s.gain.requiresGrad).to.equal(true);
      expect(s.mask.requiresGrad).to.equal(false);
      expect(names(s.namedParameters())).to.deep.equal(['gain']);
      expect(names(s.namedBuffers())).to.deep.equal(['mask']);
      expect(s.buffers()[0]).to.equal(s.mask);
      expect(Object.keys(s.stateDict())).to.deep.equal(['gain', 'mask']);
    });

    it('persistent vs non-persistent buffers (decorator and registerBuffer)', () => {
      const m = new WithStats();
      expect(names(m.namedBuffers())).to.deep.equal(['runningMean', 'scratch']);
      // PyTorch's order: a module's parameters, then its persistent buffers, then its children
      expect(Object.keys(m.stateDict())).to.deep.equal(['weight', 'runningMean']);
      m.registerBuffer('extra', ones([2]), { persistent: false });
      m.registerBuffer('kept', ones([2]));
      expect(names(m.namedBuffers())).to.deep.equal(['runningMean', 'scratch', 'extra', 'kept']);
      expect(Object.keys(m.stateDict())).to.deep.equal(['weight', 'runningMean', 'kept']);
      // re-registering decides persistence again
      m.registerBuffer('extra', ones([2]), { persistent: true });
      m.registerBuffer('kept', ones([2]), { persistent: false });
      expect(Object.keys(m.stateDict())).to.deep.equal(['weight', 'runningMean', 'extra']);
      // reassigning keeps it
      m.scratch = zeros([3]);
      expect(Object.keys(m.stateDict())).to.deep.equal(['weight', 'runningMean', 'extra']);
      const seq = new nn.Sequential(new WithStats());
      expect(Object.keys(seq.stateDict())).to.deep.equal(['0.weight', '0.runningMean']);
      expect(names(seq.namedBuffers())).to.deep.equal(['0.runningMean', '0.scratch']);
    });

    it('subclasses inherit the registered fields of their base class, base fields first', () => {
      class Wider extends MLP {
        @child extra = new nn.LazyLinear(3);
        @buffer({ persistent: false }) cache = zeros([1]);
        forward(X: Tensor): Tensor {
          return this.extra(super.forward(X));
        }
      }
      const net = new Wider();
      expect((net(rand([2, 20])) as Tensor).shape).to.deep.equal([2, 3]);
      expect(names(net.namedChildren())).to.deep.equal(['hidden', 'out', 'extra']);
      expect(Object.keys(net.stateDict())).to.deep.equal(['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias', 'extra.weight', 'extra.bias']);
      expect(names(net.namedBuffers())).to.deep.equal(['cache']);
      // the base class is unaffected
      expect(names(new MLP().namedChildren())).to.deep.equal(['hidden', 'out']);
    });

    it('registerParameter / registerBuffer / addModule register at run time', () => {
      const m = new nn.Module();
      m.registerParameter('w', rand([2, 3]));
      m.registerBuffer('b', rand([3]));
      m.addModule('lin', new nn.Linear(3, 1));
      m.registerParameter('none', null);
      expect(names(m.namedParameters())).to.deep.equal(['w', 'lin.weight', 'lin.bias']);
      expect(names(m.namedBuffers())).to.deep.equal(['b']);
      expect(names(m.namedChildren())).to.deep.equal(['lin']);
      expect((m as any).w.requiresGrad).to.equal(true);
      expect(Object.keys(m.stateDict())).to.deep.equal(['w', 'b', 'lin.weight', 'lin.bias']);
      expect(() => m.registerBuffer('w', rand([1]))).to.throw(/'w' is already registered as a param/);
      expect(() => m.addModule('a.b', new nn.ReLU())).to.throw(/cannot contain '\.'/);
      expect(() => m.addModule('forward', new nn.ReLU())).to.throw(/'forward' is already a property/);
      expect(() => m.registerParameter('p', rand([2]).mul(2).requiresGrad_() as Tensor)).to.not.throw();
    });

    it('a parameter must be a leaf tensor', () => {
      const x = rand([2], { requiresGrad: true });
      const m = new nn.Module();
      expect(() => m.registerParameter('p', x.mul(2))).to.throw(/must be a leaf tensor.*detach/);
    });

    it("registering over a plain attribute throws like PyTorch's KeyError; re-registering the same kind replaces", () => {
      // PyTorch 1.13: m.scale = 5; m.register_buffer('scale', t) -> KeyError: "attribute 'scale' already exists"
      // (register_parameter and add_module alike); the attribute is left as it was
      const m = new nn.Module();
      (m as any).scale = 5;
      (m as any).none = null;
      expect(() => m.registerBuffer('scale', ones([1]))).to.throw(
        "Module: cannot register buffer 'scale': attribute 'scale' already exists (number 5)",
      );
      expect(() => m.registerParameter('scale', ones([1]))).to.throw("cannot register param 'scale': attribute 'scale' already exists");
      expect(() => m.addModule('scale', new nn.ReLU())).to.throw("cannot register child 'scale': attribute 'scale' already exists");
      expect(() => m.registerBuffer('none', ones([1]))).to.throw("attribute 'none' already exists (null)");
      expect((m as any).scale).to.equal(5);
      expect([m.namedParameters(), m.namedBuffers(), m.namedChildren()]).to.deep.equal([[], [], []]);
      // PyTorch's other rules: re-registering a name of the same kind replaces it; another kind, '.' and '' throw
      m.registerBuffer('b', ones([1]));
      m.registerBuffer('b', zeros([2]));
      m.registerParameter('p', ones([1]));
      m.registerParameter('p', zeros([3]));
      m.addModule('c', new nn.ReLU());
      m.addModule('c', new nn.Tanh());
      expect(m.namedBuffers().map(([k, t]) => [k, t.shape])).to.deep.equal([['b', [2]]]);
      expect(m.namedParameters().map(([k, t]) => [k, t.shape])).to.deep.equal([['p', [3]]]);
      expect(m.namedChildren().map(([k, c]) => [k, c.constructor.name])).to.deep.equal([['c', 'Tanh']]);
      expect(() => m.registerParameter('b', ones([1]))).to.throw("'b' is already registered as a buffer");
      expect(() => m.registerBuffer('', ones([1]))).to.throw('buffer name must be a non-empty string');
      expect(() => m.registerBuffer('x.y', ones([1]))).to.throw("buffer name 'x.y' cannot contain '.'");
    });

    it('a field declared with a decorator counts as registered; a field declared without a value is no attribute yet', () => {
      class Declared extends nn.Module {
        @param w!: Tensor;
        extra!: Tensor; // TypeScript defines it as undefined before the constructor body runs
        constructor(as: 'param' | 'buffer') {
          super();
          if (as === 'param') this.registerParameter('w', ones([2]));
          else this.registerBuffer('w', ones([2]));
          this.registerBuffer('extra', zeros([1]));
        }
      }
      expect(() => new Declared('buffer')).to.throw("Declared: 'w' is already registered as a param");
      const d = new Declared('param');
      expect(names(d.namedParameters())).to.deep.equal(['w']);
      expect(names(d.namedBuffers())).to.deep.equal(['extra']);
    });
  });

  describe('children and modules', () => {
    it('children / namedChildren / modules / namedModules', () => {
      const net = makeChimera();
      expect(names(net.namedChildren())).to.deep.equal(['0', '1', '2']);
      expect(net.children()[0]).to.be.instanceOf(NestMLP);
      expect(names(net.namedModules())).to.deep.equal([
        '',
        '0',
        '0.net',
        '0.net.0',
        '0.net.1',
        '0.net.2',
        '0.net.3',
        '0.linear',
        '1',
        '2',
        '2.linear',
      ]);
      expect(net.modules()[0]).to.equal(net);
      expect(net.modules()).to.have.length(11);
      const nest = new NestMLP();
      expect(names(nest.namedChildren())).to.deep.equal(['net', 'linear']);
      expect(nest.children()).to.deep.equal([nest.net, nest.linear]);
    });

    it('stateDict keys name the path (hidden.weight, 0.net.2.bias)', () => {
      const mlp = new MLP();
      mlp(rand([2, 20]));
      expect(Object.keys(mlp.stateDict())).to.deep.equal(['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']);
      const chimera = makeChimera();
      chimera(rand([2, 20]));
      const sd = chimera.stateDict();
      expect(sd).to.have.property('0.net.2.bias');
      expect(sd['0.net.2.bias'].shape).to.deep.equal([32]);
      expect(sd['2.randWeight'].shape).to.deep.equal([20, 20]);
      expect(sd['0.net.2.bias'].requiresGrad).to.equal(false);
    });
  });

  describe('loadStateDict', () => {
    it('round-trips between two instances', () => {
      const a = new Scale();
      const b = new Scale();
      noGrad(() => a.gain.fill_(3)); // gain starts at 1 in both: make the load visible
      expect(b.loadStateDict(a.stateDict())).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
      expect(snapshot(b)).to.deep.equal(snapshot(a));
      expect(b.gain.requiresGrad).to.equal(true);
    });

    it('strict: one error listing missing keys, unexpected keys and size mismatches, and nothing changed', () => {
      const net = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
      const before = snapshot(net);
      const sd: Record<string, Tensor> = {
        '0.weight': rand([4, 3]), // fine: would be copied if everything else fitted
        '0.bias': rand([5]), // size mismatch
        '2.weight': rand([2, 4]),
        'extra.weight': rand([1]), // unexpected
        // '2.bias' missing
      };
      const err = errorOf(() => net.loadStateDict(sd));
      expect(err.message).to.equal(
        'Error(s) in loading state dict for Sequential (nothing was changed):\n' +
          "  missing keys: '2.bias'\n" +
          "  unexpected keys: 'extra.weight'\n" +
          "  size mismatch for '0.bias': copying a param with shape [5] from checkpoint, the shape in current model is [4]",
      );
      expect(snapshot(net)).to.deep.equal(before);
    });

    it('strict: false loads what fits and returns {missingKeys, unexpectedKeys}', () => {
      const net = new nn.Sequential(new nn.Linear(3, 4), new nn.ReLU(), new nn.Linear(4, 2));
      const w = rand([4, 3]);
      const r = net.loadStateDict({ '0.weight': w, 'head.bias': rand([2]) }, { strict: false });
      expect(r).to.deep.equal({ missingKeys: ['0.bias', '2.weight', '2.bias'], unexpectedKeys: ['head.bias'] });
      expect(values((net.at(0) as nn.Linear).weight)).to.deep.equal(values(w));
      // size mismatches are errors even when not strict (as in PyTorch), and change nothing
      const before = snapshot(net);
      expect(() => net.loadStateDict({ '0.weight': rand([1, 3]), '2.bias': rand([2]) }, { strict: false })).to.throw(/size mismatch for '0.weight'/);
      expect(snapshot(net)).to.deep.equal(before);
    });

    it('does not load into non-persistent buffers (they are not part of the state)', () => {
      const m = new WithStats();
      const r = m.loadStateDict({ weight: ones([3]), runningMean: ones([3]), scratch: zeros([3]) }, { strict: false });
      expect(r.unexpectedKeys).to.deep.equal(['scratch']);
      expect(values(m.scratch)).to.deep.equal([1, 1, 1]);
      expect(values(m.runningMean)).to.deep.equal([1, 1, 1]);
    });

    it('copies values into the existing tensors (identity kept), from tensors of another device too', () => {
      const net = new nn.Linear(2, 2);
      const w = net.weight;
      const devs = testDevices();
      const other = devs.find((d) => d !== net.weight.device) ?? devs[0];
      net.loadStateDict({
        weight: tensor(
          [
            [1, 2],
            [3, 4],
          ],
          { device: other },
        ),
        bias: tensor([5, 6], { device: other }),
      });
      expect(net.weight).to.equal(w);
      expect(values(net.weight)).to.deep.equal([1, 2, 3, 4]);
      expect(net.weight.device).to.equal(getDefaultDevice());
    });

    it('rejects a non-tensor value', () => {
      const net = new nn.Linear(2, 2);
      expect(() =>
        net.loadStateDict({
          weight: [
            [1, 2],
            [3, 4],
          ] as any,
          bias: zeros([2]),
        }),
      ).to.throw(/'weight': expected a Tensor, got Array/);
    });

    it('refuses a disposed tensor, naming it, and changes nothing: the model keeps working', () => {
      const net = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      net(rand([5, 3]));
      const before = bits(net);
      const sd = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4)).stateDict();
      const w = rand([4, 3]);
      w.dispose();
      sd['0.weight'] = w;
      for (const strict of [true, false]) {
        const err = errorOf(() => net.loadStateDict(sd, { strict }));
        expect(err.message).to.equal(
          "Error(s) in loading state dict for Sequential (nothing was changed):\n  '0.weight': the checkpoint's tensor of shape [4, 3] was disposed (its data is released)",
        );
      }
      expect(bits(net)).to.deep.equal(before);
      expect((net.eval()(rand([2, 3])) as Tensor).shape).to.deep.equal([2, 4]);
    });

    it('reports every bad entry in one error; every parameter and buffer stays bit-identical', () => {
      const net = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      net(rand([5, 3]));
      const before = bits(net);
      const gone = rand([4]);
      gone.dispose();
      const sd: Record<string, unknown> = {
        '0.weight': rand([4, 3]), // fine: would be copied if everything else fitted
        '0.bias': null,
        '1.weight': 5,
        '1.bias': rand([3]),
        '1.running_mean': gone,
        '1.running_var': new nn.UninitializedParameter(),
        '1.num_batches_tracked': { shape: [] },
      };
      expect(errorOf(() => net.loadStateDict(sd as Record<string, Tensor>)).message).to.equal(
        'Error(s) in loading state dict for Sequential (nothing was changed):\n' +
          "  '0.bias': expected a Tensor, got null\n" +
          "  '1.weight': expected a Tensor, got number\n" +
          "  size mismatch for '1.bias': copying a param with shape [3] from checkpoint, the shape in current model is [4]\n" +
          "  '1.running_mean': the checkpoint's tensor of shape [4] was disposed (its data is released)\n" +
          "  '1.running_var': the checkpoint holds an uninitialized lazy parameter (save the model after its first forward pass)\n" +
          "  '1.num_batches_tracked': expected a Tensor, got Object",
      );
      expect(bits(net)).to.deep.equal(before);
    });

    it("a tensor that cannot be moved to the module's device fails the load before anything is written", function () {
      const here = getDefaultDevice();
      const other = testDevices().find((d) => d !== here);
      if (!other) this.skip();
      const net = new nn.Linear(2, 2);
      const before = bits(net);
      // 'weight' is on the module's device (no move); 'bias' must be uploaded to it, and that upload fails
      const sd = {
        weight: tensor([
          [1, 2],
          [3, 4],
        ]),
        bias: tensor([5, 6], { device: other }),
      };
      const backend = backendFor(here);
      const upload = backend.upload;
      backend.upload = () => {
        throw new Error('device out of memory');
      };
      let err: Error;
      try {
        err = errorOf(() => net.loadStateDict(sd));
      } finally {
        backend.upload = upload;
      }
      expect(err.message).to.equal(
        `Error(s) in loading state dict for Linear (nothing was changed):\n  'bias': could not move the checkpoint's tensor from ${other} to ${here}: device out of memory`,
      );
      expect(bits(net)).to.deep.equal(before);
    });

    it("loads the values the checkpoint held when the load began, even where it holds the module's own tensors", () => {
      const m = new nn.Module();
      m.registerParameter('a', tensor([1, 2]));
      m.registerParameter('b', tensor([3, 4]));
      const own = m.stateDict();
      m.loadStateDict({ a: own.b, b: own.a });
      expect([values((m as any).a), values((m as any).b)]).to.deep.equal([
        [3, 4],
        [1, 2],
      ]);
    });

    it('keys are data: unexpected keys named constructor/toString/__proto__/hasOwnProperty are reported; inherited ones are not entries', () => {
      const net = new nn.Linear(2, 2);
      const before = bits(net);
      const odd = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
      const good = new nn.Linear(2, 2).stateDict();
      // Object.fromEntries defines '__proto__' as an own key, as JSON.parse and loadFile do
      const sd = Object.fromEntries([...Object.entries(good), ...odd.map((k) => [k, ones([1])])]);
      expect(Object.keys(sd)).to.deep.equal(['weight', 'bias', ...odd]);
      expect(errorOf(() => net.loadStateDict(sd)).message).to.equal(
        "Error(s) in loading state dict for Linear (nothing was changed):\n  unexpected keys: 'constructor', 'toString', '__proto__', 'hasOwnProperty'",
      );
      expect(bits(net)).to.deep.equal(before);
      expect(net.loadStateDict(sd, { strict: false })).to.deep.equal({ missingKeys: [], unexpectedKeys: odd });
      expect(values(net.weight)).to.deep.equal(values(good.weight));
      // an entry only inherited from a prototype is not in the state dict
      expect(errorOf(() => net.loadStateDict(Object.create(good))).message).to.include("missing keys: 'weight', 'bias'");
      // a Map is a state dict too
      net.loadStateDict(
        new Map([
          ['weight', zeros([2, 2])],
          ['bias', ones([2])],
        ]),
      );
      expect([values(net.weight), values(net.bias!)]).to.deep.equal([
        [0, 0, 0, 0],
        [1, 1],
      ]);
    });

    it('a BatchNorm state dict without num_batches_tracked loads strictly, the counter reset to 0 (as PyTorch)', () => {
      // PyTorch 1.13's _NormBase._load_from_state_dict puts num_batches_tracked = tensor(0) into a dict
      // without version metadata that lacks it: bn.load_state_dict(sd) -> <All keys matched>, counter 0
      const net = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      net(rand([5, 3]));
      net(rand([5, 3]));
      const bn = net.at(1) as nn.BatchNorm1d;
      expect(values(bn.numBatchesTracked!)).to.deep.equal([2]);
      const src = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      src(rand([5, 3]));
      const sd = src.stateDict();
      delete sd['1.num_batches_tracked'];
      for (const strict of [true, false]) {
        noGrad(() => bn.numBatchesTracked!.fill_(7));
        expect(net.loadStateDict(sd, { strict })).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
        expect(values(bn.numBatchesTracked!)).to.deep.equal([0]);
        expect(values(bn.runningMean!)).to.deep.equal(values((src.at(1) as nn.BatchNorm1d).runningMean!));
      }
      // only the counter has a default: the running stats are still required
      delete sd['1.running_var'];
      expect(errorOf(() => net.loadStateDict(sd)).message).to.include("missing keys: '1.running_var'");
      // without running stats there is no counter to default (and one in the dict is unexpected)
      const plain = new nn.BatchNorm2d(2, { trackRunningStats: false });
      expect(plain.loadStateDict({ weight: ones([2]), bias: zeros([2]) })).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
      expect(errorOf(() => plain.loadStateDict({ weight: ones([2]), bias: zeros([2]), num_batches_tracked: zeros([]) })).message).to.include(
        "unexpected keys: 'num_batches_tracked'",
      );
    });

    it('tied weights: loading under one name is enough', () => {
      const a = new Tied();
      const sd = a.stateDict();
      delete sd['b.weight'];
      delete sd['again.weight'];
      delete sd['again.bias'];
      const b = new Tied();
      expect(b.loadStateDict(sd)).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
      expect(values(b.b.weight)).to.deep.equal(values(a.a.weight));
    });
  });

  describe('lazy layers', () => {
    it('parameters() lists the uninitialised parameters; the first call materialises them in place', () => {
      const net = new MLP();
      const params = net.parameters();
      expect(params).to.have.length(4);
      expect(params.every((p) => p instanceof nn.UninitializedParameter)).to.equal(true);
      expect(names(net.namedParameters())).to.deep.equal(['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']);
      expect(() => params[0].numel()).to.throw(/uninitialized/);
      net(rand([2, 20]));
      // same objects (an optimizer built before the first call keeps working)
      expect(net.parameters()).to.deep.equal(params);
      expect(params.map((p) => p.shape)).to.deep.equal([[256, 20], [256], [10, 256], [10]]);
      expect(params.some((p) => p instanceof nn.UninitializedParameter)).to.equal(false);
      expect(params.every((p) => p.requiresGrad && p.isLeaf)).to.equal(true);
      expect(net.hidden).to.be.instanceOf(nn.Linear);
      expect(net.hidden.inFeatures).to.equal(20);
    });

    it('loadStateDict into an unmaterialised lazy layer throws a clear error and changes nothing', () => {
      const src = new MLP();
      src(rand([2, 20]));
      const net = new MLP();
      const err = errorOf(() => net.loadStateDict(src.stateDict()));
      expect(err.message).to.match(/Error\(s\) in loading state dict for MLP \(nothing was changed\)/);
      expect(err.message).to.include("'hidden.weight': cannot load into an uninitialized lazy parameter; run one forward pass first");
      expect(err.message).to.include("'out.bias': cannot load into an uninitialized lazy parameter");
      expect(net.parameters().every((p) => p instanceof nn.UninitializedParameter)).to.equal(true);
      net(rand([2, 20]));
      net.loadStateDict(src.stateDict());
      expect(snapshot(net)).to.deep.equal(snapshot(src));
    });

    it('loading the state of an unmaterialised lazy model is refused clearly', () => {
      const net = new MLP();
      net(rand([2, 20]));
      const err = errorOf(() => net.loadStateDict(new MLP().stateDict()));
      expect(err.message).to.include("'hidden.weight': the checkpoint holds an uninitialized lazy parameter");
      expect(err.message).to.not.include('size mismatch');
    });

    it('the repr shows the lazy layer until it is materialised, then a Linear (like PyTorch)', () => {
      const l = new nn.LazyLinear(3);
      expect(l.toString()).to.equal('LazyLinear(inFeatures=0, outFeatures=3, bias=true)');
      l(rand([1, 5]));
      expect(l.toString()).to.equal('Linear(inFeatures=5, outFeatures=3, bias=true)');
    });
  });

  describe('to(device)', () => {
    const devs = testDevices();
    const pairs = devs.flatMap((a) => devs.filter((b) => b !== a).map((b) => [a, b] as [DeviceName, DeviceName]));
    for (const [from, to] of pairs) {
      it(`moves every parameter, buffer and gradient ${from} -> ${to}, keeping tensor identity`, () => {
        const saved = getDefaultDevice();
        setDefaultDevice(from);
        try {
          const net = new nn.Sequential(new Scale(), new WithStats(), new nn.Linear(3, 2));
          const x = rand([20, 3]);
          (net.at(2)(net.at(0)(x)) as Tensor).sum().backward();
          const tensors = [...net.parameters(), ...net.buffers()];
          const grads = net.parameters().map((p) => p.grad);
          expect(grads.filter((g) => g).length, 'parameters with a gradient to move').to.be.greaterThan(0);
          const before = tensors.map(values);
          expect(net.to(to)).to.equal(net);
          expect(tensors.every((t) => t.device === to)).to.equal(true);
          expect([...net.parameters(), ...net.buffers()]).to.deep.equal(tensors);
          expect(tensors.map(values)).to.deep.equal(before);
          net.parameters().forEach((p, i) => {
            expect(p.grad === null).to.equal(grads[i] === null);
            if (p.grad) expect(p.grad.device).to.equal(to);
          });
          expect(tensors.every((t) => t.requiresGrad === net.parameters().includes(t))).to.equal(true);
          const y = net.at(2)(net.at(0)(rand([20, 3], { device: to }))) as Tensor;
          expect(y.device).to.equal(to);
        } finally {
          setDefaultDevice(saved);
        }
      });
    }
  });

  describe('modes and utilities', () => {
    it('train() / eval() set the flag recursively', () => {
      const net = makeChimera();
      expect(net.modules().every((m) => m.training)).to.equal(true);
      expect(net.eval()).to.equal(net);
      expect(net.modules().every((m) => !m.training)).to.equal(true);
      net.train();
      expect(net.modules().every((m) => m.training)).to.equal(true);
      net.train(false);
      expect(net.modules().map((m) => m.training)).to.deep.equal(net.modules().map(() => false));
      (net.at(0) as NestMLP).train();
      expect(net.training).to.equal(false);
      expect((net.at(0) as NestMLP).net.at(1).training).to.equal(true);
    });

    it('apply(fn) visits children first, then the module itself', () => {
      const net = new NestMLP();
      const seen: string[] = [];
      expect(net.apply((m) => seen.push(m.constructor.name))).to.equal(net);
      expect(seen).to.deep.equal(['LazyLinear', 'ReLU', 'LazyLinear', 'ReLU', 'Sequential', 'LazyLinear', 'NestMLP']);
      const lin = new nn.Sequential(new nn.Linear(2, 2), new nn.Linear(2, 2));
      lin.apply((m) => {
        if (m instanceof nn.Linear) nn.init.constant_(m.weight, 0.5);
      });
      expect(
        lin
          .parameters()
          .filter((_, i) => i % 2 === 0)
          .every((w) => values(w).every((v) => v === 0.5)),
      ).to.equal(true);
    });

    it('zeroGrad() clears every gradient (to null, or to zeros)', () => {
      const net = new nn.Sequential(new nn.Linear(3, 2), new nn.ReLU(), new nn.Linear(2, 1));
      (net(rand([4, 3])) as Tensor).sum().backward();
      expect(net.parameters().every((p) => p.grad !== null)).to.equal(true);
      net.zeroGrad(false);
      expect(net.parameters().every((p) => p.grad !== null && values(p.grad).every((v) => v === 0))).to.equal(true);
      net.zeroGrad();
      expect(net.parameters().every((p) => p.grad === null)).to.equal(true);
    });

    it('gradients accumulate across backward calls until zeroGrad', () => {
      const l = new nn.Linear(2, 1);
      const x = tensor([[1, 2]]);
      (l(x) as Tensor).sum().backward();
      (l(x) as Tensor).sum().backward();
      expect(values(l.weight.grad!)).to.deep.equal([2, 4]);
      l.zeroGrad();
      expect(l.weight.grad).to.equal(null);
    });
  });

  describe('hooks', () => {
    it('forward pre-hooks can replace the arguments, forward hooks the output; handle.remove() detaches them', () => {
      const s = new Scale();
      const calls: string[] = [];
      const pre = s.registerForwardPreHook((m, args) => {
        calls.push(`pre ${m.constructor.name} ${(args[0] as Tensor).shape}`);
        return [(args[0] as Tensor).add(1)];
      });
      const post = s.registerForwardHook((_m, args, out) => {
        calls.push(`post ${(args[0] as Tensor).toArray()}`);
        return (out as Tensor).mul(10);
      });
      const observe = s.registerForwardHook(() => {
        calls.push('observe');
      });
      expect(values(s(tensor([1, 2])))).to.deep.equal([20, 30]);
      expect(calls).to.deep.equal(['pre Scale 2', 'post 2,3', 'observe']);
      pre.remove();
      expect(values(s(tensor([1, 2])))).to.deep.equal([10, 20]);
      post.remove();
      observe.remove();
      calls.length = 0;
      expect(values(s(tensor([1, 2])))).to.deep.equal([1, 2]);
      expect(calls).to.deep.equal([]);
      post.remove(); // twice is harmless
    });

    it('a pre-hook may return a single value; hooks on sub-modules run when the parent calls them', () => {
      const net = new NestMLP();
      net(rand([2, 20]));
      const seen: string[] = [];
      net.net.at(2).registerForwardHook((m, _a, out) => void seen.push(`${m.constructor.name} -> ${(out as Tensor).shape}`));
      net.linear.registerForwardPreHook((_m, args) => (args[0] as Tensor).mul(0));
      const y = net(rand([2, 20])) as Tensor;
      expect(seen).to.deep.equal(['Linear -> 2,32']);
      expectClose(y, net.linear.bias!.unsqueeze(0).expand([2, 16]), 1e-6, 1e-6, 'output of a zeroed input');
    });
  });

  describe('toString', () => {
    it('prints an indented tree like PyTorch', () => {
      expect(new MLP().toString()).to.equal(
        [
          'MLP(',
          '  (hidden): LazyLinear(inFeatures=0, outFeatures=256, bias=true)',
          '  (out): LazyLinear(inFeatures=0, outFeatures=10, bias=true)',
          ')',
        ].join('\n'),
      );
      const chimera = makeChimera();
      chimera(rand([2, 20]));
      expect(chimera.toString()).to.equal(
        [
          'Sequential(',
          '  (0): NestMLP(',
          '    (net): Sequential(',
          '      (0): Linear(inFeatures=20, outFeatures=64, bias=true)',
          '      (1): ReLU()',
          '      (2): Linear(inFeatures=64, outFeatures=32, bias=true)',
          '      (3): ReLU()',
          '    )',
          '    (linear): Linear(inFeatures=32, outFeatures=16, bias=true)',
          '  )',
          '  (1): Linear(inFeatures=16, outFeatures=20, bias=true)',
          '  (2): FixedHiddenMLP(',
          '    (linear): Linear(inFeatures=20, outFeatures=20, bias=true)',
          '  )',
          ')',
        ].join('\n'),
      );
      expect(new Scale().toString()).to.equal('Scale()');
      expect(String(new nn.Linear(2, 3, { bias: false }))).to.equal('Linear(inFeatures=2, outFeatures=3, bias=false)');
      // a shared child is shown under each name, as PyTorch does
      const l = new nn.Linear(1, 1);
      expect(new nn.Sequential(l, l).toString()).to.equal(
        'Sequential(\n  (0): Linear(inFeatures=1, outFeatures=1, bias=true)\n  (1): Linear(inFeatures=1, outFeatures=1, bias=true)\n)',
      );
    });

    it('extraRepr goes first, children follow', () => {
      class Block extends nn.Module {
        @child proj = new nn.Linear(2, 2);
        extraRepr() {
          return 'scale=0.5';
        }
      }
      expect(new Block().toString()).to.equal('Block(\n  scale=0.5\n  (proj): Linear(inFeatures=2, outFeatures=2, bias=true)\n)');
    });
  });

  describe('field routing errors', () => {
    it('assigning a non-tensor to a @param or @buffer field throws', () => {
      const s = new Scale();
      expect(() => ((s as any).gain = 3)).to.throw('Scale.gain: @param expects a Tensor, got number 3');
      expect(() => ((s as any).mask = [1, 2])).to.throw('Scale.mask: @buffer expects a Tensor, got Array');
      expect(() => ((s as any).gain = new nn.ReLU())).to.throw(/Scale.gain: @param expects a Tensor, got ReLU/);
      // a fresh tensor is fine and becomes a parameter
      s.gain = tensor([2]);
      expect(s.gain.requiresGrad).to.equal(true);
      expect(s.parameters()[0]).to.equal(s.gain);
      s.gain = null as any;
      expect(s.parameters()).to.deep.equal([]);
    });

    it('assigning a non-module to a @child field throws', () => {
      const m = new MLP();
      expect(() => ((m as any).hidden = rand([2]))).to.throw('MLP.hidden: @child expects a Module, got Tensor');
    });

    it('a Module in an unregistered field throws, at construction or assignment', () => {
      class Forgot extends nn.Module {
        layer = new nn.Linear(2, 2);
      }
      expect(() => new Forgot()).to.throw(
        'Forgot.layer holds a Module but is not registered: add @child (or use addModule / nn.ModuleList / nn.ModuleDict)',
      );
      class ForgotList extends nn.Module {
        layers = [new nn.Linear(2, 2)];
      }
      expect(() => new ForgotList()).to.throw(/ForgotList.layers holds a Module but is not registered/);
      const s = new Scale();
      expect(() => ((s as any).extra = new nn.ReLU())).to.throw(/Scale.extra holds a Module but is not registered/);
      // plain values in plain fields are fine
      (s as any).note = 'hello';
      expect((s as any).note).to.equal('hello');
      expect(s.parameters()).to.have.length(1);
    });

    it('@child arrays and records become ModuleList / ModuleDict', () => {
      class Stack extends nn.Module {
        @child layers = [new nn.Linear(2, 2), new nn.Linear(2, 2)];
        @child heads = { a: new nn.Linear(2, 1), b: new nn.Linear(2, 1) };
      }
      const m = new Stack();
      expect(m.layers).to.be.instanceOf(nn.ModuleList);
      expect(m.heads).to.be.instanceOf(nn.ModuleDict);
      expect(Object.keys(m.stateDict())).to.deep.equal([
        'layers.0.weight',
        'layers.0.bias',
        'layers.1.weight',
        'layers.1.bias',
        'heads.a.weight',
        'heads.a.bias',
        'heads.b.weight',
        'heads.b.bias',
      ]);
    });
  });

  describe('errors during forward', () => {
    it('a wrong input size names the module path from the called module', () => {
      class BadNest extends nn.Module {
        @child net = new nn.Sequential(new nn.Linear(20, 20), new nn.ReLU(), new nn.Linear(64, 32), new nn.ReLU());
        forward(x: Tensor): Tensor {
          return this.net(x);
        }
      }
      const model = new nn.Sequential(new BadNest());
      expect(() => model(rand([2, 20]))).to.throw('0.net.2 (Linear): expected input [*, 64], got [2, 20]');
      // called directly, the path starts there
      const nest = new BadNest();
      expect(() => nest(rand([2, 20]))).to.throw('net.2 (Linear): expected input [*, 64], got [2, 20]');
      expect(() => new nn.Linear(3, 1)(rand([2, 4]))).to.throw(/^Linear: expected input \[\*, 3\], got \[2, 4\]$/);
      // the failed call leaves no stale frames behind
      expect(() => new nn.Sequential(new nn.Linear(4, 3))(rand([1, 2]))).to.throw(/^0 \(Linear\): expected input \[\*, 4\], got \[1, 2\]$/);
    });

    it('a Module without forward says so', () => {
      expect(() => new nn.Module()(rand([1]))).to.throw('Module is missing the required "forward" method');
    });
  });

  describe('gradients through control flow and shared parameters', () => {
    /** FixedHiddenMLP in small: a constant weight, one Linear used twice, a data-dependent loop. */
    class TinyFixed extends nn.Module {
      @buffer w = tensor([
        [0.9, -0.4, 0.3],
        [0.2, 0.8, -0.5],
        [-0.6, 0.1, 0.7],
      ]);
      @child lin = new nn.Linear(3, 3);
      halvings = 0;
      forward(X: Tensor): Tensor {
        X = this.lin(X);
        X = F.relu(X.matmul(this.w).add(1));
        X = this.lin(X);
        this.halvings = 0;
        while (X.abs().sum().item() > 1) {
          X = X.div(2);
          this.halvings++;
        }
        return X.sum();
      }
    }

    for (const device of testDevices()) {
      it(`finite differences agree with autograd (${device})`, () => {
        const saved = getDefaultDevice();
        setDefaultDevice(device);
        try {
          const net = new TinyFixed();
          noGradCopy(net.lin.weight, [
            [0.5, -0.3, 0.8],
            [0.1, 0.4, -0.2],
            [-0.7, 0.6, 0.3],
          ]);
          noGradCopy(net.lin.bias!, [0.2, -0.1, 0.4]);
          const x = tensor([
            [1.5, -0.5, 2.0],
            [0.3, 0.8, -1.2],
          ]);
          net(x);
          expect(net.halvings).to.be.greaterThan(1);
          // the parameters go in through field assignment: the same Linear, used twice, gets both contributions
          const f = (W: Tensor, b: Tensor, X: Tensor) => {
            net.lin.weight = W;
            net.lin.bias = b;
            return net(X);
          };
          checkGrad(f, [net.lin.weight.detach(), net.lin.bias!.detach(), x], { eps: 1e-2, atol: 1e-3, rtol: 1e-2 });
          // and the chain through the Linear used twice matches a hand-written version
          const W = net.lin.weight;
          const b = net.lin.bias!;
          W.grad = null;
          b.grad = null;
          (net(x) as Tensor).backward();
          const W2 = W.detach().requiresGrad_();
          const b2 = b.detach().requiresGrad_();
          let h = F.linear(F.relu(F.linear(x, W2, b2).matmul(net.w).add(1)), W2, b2);
          for (let k = 0; k < net.halvings; k++) h = h.div(2);
          h.sum().backward();
          expectClose(W.grad!, W2.grad!, 1e-6, 1e-5, 'weight grad');
          expectClose(b.grad!, b2.grad!, 1e-6, 1e-5, 'bias grad');
        } finally {
          setDefaultDevice(saved);
        }
      });
    }

    it('FixedHiddenMLP halves until |X| sums to at most 1', () => {
      const net = new FixedHiddenMLP();
      const y = net(rand([2, 20])) as Tensor;
      expect(y.shape).to.deep.equal([]);
      expect(Math.abs(y.item())).to.be.at.most(1);
    });
  });
});

function noGradCopy(t: Tensor, data: number[] | number[][]): void {
  noGrad(() => t.copy_(tensor(data, { device: t.device })));
}
