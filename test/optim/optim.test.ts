/**
 * Optimizers against PyTorch 1.13 (test/fixtures/optim.json from gen_layers.py): a small MLP trained for
 * 5 steps of MSE from PyTorch's initial weights; losses and final parameters must match. Also: state
 * dict round trips continue identically, state survives tidy(), parameters keep their identity.
 */
import { expect } from 'chai';
import { F, nn, optim, Tensor, tidy, backendFor, DeviceName, tensor, zeros } from '../../src';
import { expectClose, testDevices } from '../helpers';
import { golden, stateDictOf, T } from '../nn/golden';

interface OptimCase {
  name: string;
  optim: 'SGD' | 'Adam' | 'AdamW';
  opts: Record<string, any>;
  groups?: ({ layer: number } & Record<string, any>)[];
  losses: number[];
  final: Record<string, any>;
}
const G = golden<{ problem: { state: Record<string, any>; X: any; Y: any; steps: number }; cases: OptimCase[] }>('optim.json');

function setup(c: OptimCase, device: DeviceName) {
  const net = new nn.Sequential(new nn.Linear(3, 4), new nn.Tanh(), new nn.Linear(4, 2)).to(device);
  net.loadStateDict(stateDictOf(G.problem.state, device));
  const params = c.groups ? c.groups.map(({ layer, ...o }) => ({ params: net.at(layer).parameters(), ...o })) : net.parameters();
  const opt = new (optim as any)[c.optim](params, c.opts) as optim.Optimizer;
  const X = T(G.problem.X, device);
  const Y = T(G.problem.Y, device);
  const step = () =>
    tidy(() => {
      opt.zeroGrad();
      const loss = F.mseLoss(net(X), Y);
      loss.backward();
      opt.step();
      return loss.item();
    });
  return { net, opt, step };
}

describe('optim vs PyTorch', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it(`${G.cases.length} configurations: losses and parameters after ${G.problem.steps} steps`, () => {
        for (const c of G.cases) {
          const { net, step } = setup(c, device);
          const before = net.parameters();
          const losses = Array.from({ length: G.problem.steps }, step);
          expectClose(losses, c.losses, 1e-4, 1e-4, `${c.name} losses`);
          const sd = net.stateDict();
          for (const [k, v] of Object.entries(c.final)) expectClose(sd[k], v, 1e-4, 1e-4, `${c.name} ${k}`);
          // updates are in place: the model still holds the same parameter objects
          net.parameters().forEach((p, i) => expect(p).to.equal(before[i]));
        }
      });
    });
  }

  for (const name of ['sgd_nesterov', 'adam_amsgrad', 'adamw_param_groups', 'sgd_param_groups']) {
    it(`stateDict round trip continues identically (${name})`, () => {
      const c = G.cases.find((k) => k.name === name)!;
      const a = setup(c, 'cpu');
      a.step();
      a.step();
      const saved = a.opt.stateDict();
      const b = setup(c, 'cpu');
      b.net.loadStateDict(a.net.stateDict());
      b.opt.loadStateDict(saved);
      // the snapshot is a copy: stepping `a` further does not change it
      a.step();
      b.step();
      for (let i = 3; i < G.problem.steps; i++) {
        a.step();
        b.step();
      }
      const sa = a.net.stateDict();
      const sb = b.net.stateDict();
      for (const [k, v] of Object.entries(c.final)) {
        expectClose(sb[k], v, 1e-4, 1e-4, `${name} ${k} after reload`);
        expectClose(sb[k], sa[k], 1e-6, 1e-6, `${name} ${k} same as uninterrupted`);
      }
      expect(b.opt.paramGroups.map((g) => g.lr)).to.deep.equal(a.opt.paramGroups.map((g) => g.lr));
    });
  }

  it("stateDict packs parameters by index and uses PyTorch's state names", () => {
    const c = G.cases.find((k) => k.name === 'adam_amsgrad')!;
    const { opt, step } = setup(c, 'cpu');
    step();
    const sd = opt.stateDict();
    expect(sd.paramGroups).to.have.length(1);
    expect(sd.paramGroups[0].params).to.deep.equal([0, 1, 2, 3]);
    expect(sd.paramGroups[0]).to.include({ lr: 0.01, amsgrad: true, eps: 1e-8, weightDecay: 0 });
    expect(Object.keys(sd.state[0]).sort()).to.deep.equal(['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step']);
    expect(sd.state[0].step).to.equal(1);
    const s = setup(
      G.cases.find((k) => k.name === 'sgd_momentum')!,
      'cpu',
    );
    s.step();
    expect(Object.keys(s.opt.stateDict().state[3])).to.deep.equal(['momentum_buffer']);
  });

  it('optimizer state survives tidy() and changing lr recompiles no kernel', () => {
    const c = G.cases.find((k) => k.name === 'adam')!;
    const { opt, step } = setup(c, 'cpu');
    step();
    const state = [...opt.state.values()][0];
    expect((state.exp_avg as Tensor).isDisposed).to.equal(false);
    const stats = backendFor('cpu').stats;
    step();
    const compiled = stats.kernelsCompiled;
    for (const lr of [0.02, 0.005, 0.001]) {
      opt.paramGroups[0].lr = lr;
      step();
    }
    expect(stats.kernelsCompiled).to.equal(compiled);
    expect(([...opt.state.values()][0].exp_avg as Tensor).isDisposed).to.equal(false);
  });

  it('every optimizer fits the plain `optim.Optimizer` type (a training helper typed with it takes any)', () => {
    // a compile-time check as much as a run-time one: the default type parameter used to reject Adam/SGD
    const net = new nn.Linear(3, 2);
    const halveLr = (o: optim.Optimizer): number[] => o.paramGroups.map((g) => (g.lr /= 2));
    const opts: optim.Optimizer[] = [
      new optim.SGD(net.parameters(), { lr: 0.1 }),
      new optim.Adam(net.parameters(), { lr: 0.01 }),
      new optim.AdamW(net.parameters(), { lr: 0.02 }),
    ];
    expect(opts.map((o) => halveLr(o)[0])).to.deep.equal([0.05, 0.005, 0.01]);
  });

  it('zeroGrad sets gradients to null (or zeros); parameters without gradients are skipped', () => {
    const a = zeros([2], { requiresGrad: true });
    const b = zeros([2], { requiresGrad: true });
    const opt = new optim.SGD([a, b], { lr: 1 });
    a.mul(tensor([1, 2]))
      .sum()
      .backward();
    opt.step();
    expectClose(a, [-1, -2]);
    expectClose(b, [0, 0]);
    opt.zeroGrad(false);
    expectClose(a.grad!, [0, 0]);
    opt.zeroGrad();
    expect(a.grad).to.equal(null);
  });

  it('invalid options and inputs are refused with PyTorch-like messages', () => {
    const p = zeros([2], { requiresGrad: true });
    expect(() => new optim.SGD([p], { lr: -1 })).to.throw(/SGD: invalid learning rate: -1/);
    expect(() => new optim.SGD([p], { lr: 0.1, nesterov: true })).to.throw(/nesterov momentum requires a momentum and zero dampening/);
    expect(() => new optim.Adam([p], { betas: [0.9, 1.0] })).to.throw(/Adam: invalid beta parameter at index 1: 1/);
    expect(() => new optim.AdamW([p], { eps: -1 })).to.throw(/AdamW: invalid epsilon value: -1/);
    expect(() => new optim.SGD([], { lr: 0.1 })).to.throw(/SGD: got an empty parameter list/);
    expect(() => new optim.SGD(new nn.Linear(2, 2) as any, { lr: 0.1 })).to.throw(/pass model.parameters\(\), not the model/);
    expect(() => new optim.SGD([p.mul(2)], { lr: 0.1 })).to.throw(/can't optimize a non-leaf Tensor/);
    expect(() => new optim.SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 })).to.throw(/some parameters appear in more than one parameter group/);
    expect(() => new optim.SGD([{ params: [p], lrr: 1 } as any], { lr: 0.1 })).to.throw(/unknown option 'lrr'/);
    const opt = new optim.Adam([p]);
    expect(() => opt.loadStateDict({ state: {}, paramGroups: [] })).to.throw(/loaded state dict has 0 parameter groups, this optimizer has 1/);
    expect(() => opt.loadStateDict({ state: { 0: { exp_avg: zeros([3]) } }, paramGroups: [{ ...opt.paramGroups[0], params: [0] }] } as any)).to.throw(
      /state 'exp_avg' of parameter 0 has shape \[3\], the parameter has shape \[2\]/,
    );
  });

  it('loadStateDict validates everything before changing anything (disposed state, bad values, prototype keys)', () => {
    const p = tensor([1, -2], { requiresGrad: true });
    const opt = new optim.Adam([p], { lr: 0.1 });
    p.mul(p).sum().backward();
    opt.step();
    const before = opt.stateDict();
    const avg = (opt.state.get(p)!.exp_avg as Tensor).toArray();
    const good = (over: Record<string, unknown>, group: Record<string, unknown> = {}) =>
      ({ state: { 0: { ...before.state[0], ...over } }, paramGroups: [{ ...before.paramGroups[0], ...group }] }) as any;
    const dead = zeros([2]);
    dead.dispose();
    expect(() => opt.loadStateDict(good({ exp_avg: dead }))).to.throw(/nothing was loaded:\n {2}state 'exp_avg' of parameter 0 is a disposed tensor/);
    expect(() => opt.loadStateDict(good({ step: 'x' }))).to.throw(/state 'step' of parameter 0 is string, not a tensor or number/);
    const protoGroup = JSON.parse(`{"lr": 5, "__proto__": {"polluted": 1}}`);
    expect(() => opt.loadStateDict(good({}, protoGroup))).to.throw(/parameter group 0 has an option named '__proto__'/);
    // nothing changed: the state is usable and the same, and a step still works
    expect((opt.state.get(p)!.exp_avg as Tensor).toArray()).to.deep.equal(avg);
    expect((opt.paramGroups[0] as any).lr).to.equal(0.1);
    expect(({} as any).polluted).to.equal(undefined);
    opt.step();
  });

  it('works with lazy layers materialised after the optimizer was made', () => {
    const net = new nn.Sequential(new nn.LazyLinear(2));
    const opt = new optim.SGD(net.parameters(), { lr: 0.5 });
    const y = net(tensor([[1, 1, 1]]));
    y.sum().backward();
    const w0 = net.parameters()[0].dataSync();
    opt.step();
    expectClose(
      net.parameters()[0],
      Array.from(w0).map((v) => v - 0.5),
    );
  });
});
