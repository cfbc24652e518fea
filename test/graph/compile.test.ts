/**
 * nn.compile: a compiled model gives eager's outputs and gradients (capture call and replays), re-captures
 * on a new signature (shapes, training mode), falls back to eager for good on data-dependent control
 * flow, follows parameter updates, and explain() shows the fused kernels. No timings here.
 */
import { expect } from 'chai';
import { nn, F, Tensor, child, manualSeed, noGrad, ones, rand, randn, random, tensor, tidy, optim } from '../../src';
import type { DeviceName } from '../../src';
import { expectClose, testDevices } from '../helpers';
import { wasmMatmulConfig } from '../../src/backend/wasm/matmul-lowering';

/**
 * Runs a test on the gpu.js matmul kernel: the tests below count that path's graph steps (packed weights,
 * matmul epilogues); webasm's direct matmul packs its own panels and takes no gpu.js epilogue (its compiled
 * replays: test/backend/wasm-matmul.test.ts).
 */
function onGpujsMatmul(f: () => void): () => void {
  return () => {
    const was = wasmMatmulConfig.enabled;
    wasmMatmulConfig.enabled = false;
    try {
      f();
    } finally {
      wasmMatmulConfig.enabled = was;
    }
  };
}

class MLP extends nn.Module {
  @child hidden = new nn.Linear(12, 16);
  @child out = new nn.Linear(16, 5);
  forward(x: Tensor): Tensor {
    return this.out(F.relu(this.hidden(x)));
  }
}

/** One Linear used twice (its parameters get two gradient contributions), and an elementwise tail. */
class Shared extends nn.Module {
  @child fc = new nn.Linear(8, 8);
  @child head = new nn.Linear(8, 3);
  forward(x: Tensor): Tensor {
    const h = F.tanh(this.fc(x));
    const h2 = this.fc(h).sigmoid().mul(2).sub(h);
    return this.head(h2).mul(0.5);
  }
}

/** Data-dependent control flow: how often it halves depends on the values. */
class Halver extends nn.Module {
  @child fc = new nn.Linear(4, 4);
  forward(x: Tensor): Tensor {
    let y = this.fc(x);
    while (y.abs().sum().item() > 1) y = y.div(2);
    return y;
  }
}

/** Returns two tensors: not a single-tensor graph, runs eagerly. */
class Pair extends nn.Module {
  @child fc = new nn.Linear(4, 2);
  forward(x: Tensor): Tensor[] {
    const y = this.fc(x);
    return [y, y.relu()];
  }
}

/** Batch norm writes its running statistics in place during the forward (training mode). */
class Normed extends nn.Module {
  @child fc = new nn.Linear(6, 8);
  @child bn = new nn.BatchNorm1d(8);
  @child head = new nn.Linear(8, 2);
  forward(x: Tensor): Tensor {
    return this.head(F.relu(this.bn(this.fc(x))));
  }
}

/** Makes a constant tensor inside forward (captured as a constant of the graph). */
class WithConst extends nn.Module {
  @child fc = new nn.Linear(3, 3);
  forward(x: Tensor): Tensor {
    return this.fc(x)
      .mul(tensor([1, 2, 3], { device: x.device }))
      .add(1);
  }
}

/** An elementwise op whose expression reads the output index (the causal mask): fuses, but not into a matmul epilogue. */
class Masked extends nn.Module {
  @child fc = new nn.Linear(5, 5);
  forward(x: Tensor): Tensor {
    return this.fc(x).add(nn.generateSquareSubsequentMask(5, x.device).clamp(-5, 0)).relu();
  }
}

/** Three layers; the hook tests hook the middle one. */
class Deep extends nn.Module {
  @child a = new nn.Linear(6, 8);
  @child b = new nn.Linear(8, 8);
  @child c = new nn.Linear(8, 3);
  forward(x: Tensor): Tensor {
    return this.c(F.relu(this.b(F.tanh(this.a(x)))));
  }
}

/** Dropout between two layers. */
class Dropped extends nn.Module {
  @child fc = new nn.Linear(10, 32);
  @child drop = new nn.Dropout(0.3);
  @child head = new nn.Linear(32, 4);
  forward(x: Tensor): Tensor {
    return this.head(this.drop(F.relu(this.fc(x))));
  }
}

/** A reparameterised sample (as in a VAE): the backward reads the random draw. */
class Sampled extends nn.Module {
  @child mu = new nn.Linear(5, 6);
  @child logVar = new nn.Linear(5, 6);
  @child head = new nn.Linear(6, 2);
  forward(x: Tensor): Tensor {
    const mu = this.mu(x);
    const z = mu.add(randn(mu.shape, { device: x.device }).mul(this.logVar(x).mul(0.5).exp()));
    return this.head(z);
  }
}

/** Stochastic depth: in training, skips its middle layer with probability 1/2 (host-side randomness steers control flow). */
class Skipping extends nn.Module {
  @child a = new nn.Linear(4, 4);
  @child b = new nn.Linear(4, 4);
  forward(x: Tensor): Tensor {
    const h = this.a(x);
    return this.training && random() < 0.5 ? h : this.b(h);
  }
}

function clone<M extends nn.Module>(make: () => M, device: DeviceName): [M, M] {
  manualSeed(11);
  const a = make().to(device);
  manualSeed(11);
  const b = make().to(device);
  return [a, b];
}

// webasm and GL compute in f32 throughout, so fused kernels give eager's bits; the cpu backend keeps f64
// inside a kernel, so fusing two ops there skips one rounding
const tol = (device: DeviceName) => (device === 'cpu' ? 1e-5 : 1e-6);

function grads(m: nn.Module): Tensor[] {
  return m.parameters().map((p) => p.grad!.clone());
}

describe('graph: nn.compile', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it('an MLP: compiled outputs equal eager, without autograd, on the capture call and on replays', () => {
        const [net] = clone(() => new MLP(), device);
        const c = nn.compile(net);
        noGrad(() => {
          for (let k = 0; k < 3; k++) {
            const x = rand([6, 12], { device });
            expectClose(c(x), net(x), tol(device), tol(device), `call ${k}`);
          }
        });
        expect(c.compileStats).to.include({ captures: 1, replays: 2 });
      });

      it(
        'packed weights: reused across inference replays, recomputed after an in-place weight change',
        onGpujsMatmul(() => {
          const [net] = clone(() => new MLP(), device);
          const c = nn.compile(net);
          const x = rand([9, 12], { device });
          noGrad(() => {
            for (let k = 0; k < 3; k++) expectClose(c(x), net(x), tol(device), tol(device), `call ${k}`);
          });
          // host backends pack W^T for the tiled matmul (a graph step); GL reads the transposed view directly
          const packs = device === 'gpu' ? 0 : 2;
          expect(c.compileStats.reusedSteps).to.equal(packs * 1, 'second replay reuses both packed weights');
          noGrad(() => {
            net.hidden.weight.mul_(-0.5); // a new buffer: the packed copy must be recomputed
            expectClose(c(x), net(x), tol(device), tol(device), 'after the in-place change');
          });
          expect(c.compileStats.reusedSteps).to.equal(packs * 2 - (packs ? 1 : 0), 'only the unchanged weight was reused');
        }),
      );

      it(
        'an MLP: loss and gradients equal eager, on the capture call and on replays',
        onGpujsMatmul(() => {
          const [eager, compiledNet] = clone(() => new MLP(), device);
          const c = nn.compile(compiledNet);
          const target = tensor([0, 3, 1, 4, 2, 0], { device });
          for (let k = 0; k < 3; k++) {
            const x = rand([6, 12], { device });
            eager.zeroGrad();
            c.zeroGrad();
            const le = F.crossEntropy(eager(x), target);
            const lc = F.crossEntropy(c(x), target);
            le.backward();
            lc.backward();
            expectClose(lc, le, tol(device), tol(device), `loss ${k}`);
            const ge = grads(eager);
            grads(compiledNet).forEach((g, i) =>
              expectClose(g, ge[i], tol(device), tol(device), `call ${k}, grad of ${eager.namedParameters()[i][0]}`),
            );
          }
          expect(c.compileStats).to.include({ captures: 1, replays: 2, eagerCalls: 0 });
          // relu's backward mask reads relu's output, so relu fuses into the matmul epilogue with autograd on too
          const text = c.explain({ print: false });
          expect(text).to.contain("reads relu's output");
          expect(text).to.contain('forward program: 5 captured kernels -> 2 kernels');
        }),
      );

      it('gradients reach an input that requires grad', () => {
        const [net] = clone(() => new MLP(), device);
        const c = nn.compile(net);
        for (let k = 0; k < 2; k++) {
          const x1 = rand([3, 12], { device, requiresGrad: true });
          const x2 = tensor(x1.dataSync(), { shape: [3, 12], device, requiresGrad: true });
          net(x1).sum().backward();
          c(x2).sum().backward();
          expectClose(x2.grad!, x1.grad!, tol(device), tol(device), `call ${k}`);
        }
      });

      it('a model with a shared layer: outputs and gradients equal eager', () => {
        const [eager, compiledNet] = clone(() => new Shared(), device);
        const c = nn.compile(compiledNet);
        for (let k = 0; k < 3; k++) {
          const x = rand([5, 8], { device });
          eager.zeroGrad();
          c.zeroGrad();
          const ye = eager(x);
          const yc = c(x);
          expectClose(yc, ye, tol(device), tol(device), `output ${k}`);
          const w = rand([5, 3], { device });
          ye.mul(w).sum().backward();
          yc.mul(w).sum().backward();
          const ge = grads(eager);
          grads(compiledNet).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `call ${k}, grad ${i}`));
        }
        expect(c.compileStats.replays).to.equal(2);
      });

      it('data-dependent control flow (item() in forward) falls back to eager for good, with eager results', () => {
        const [eager, compiledNet] = clone(() => new Halver(), device);
        const c = nn.compile(compiledNet);
        for (const scale of [1, 10, 100, 0.01]) {
          const x = rand([2, 4], { device }).mul(scale);
          expectClose(c(x), eager(x), 0, 0, `scale ${scale}`);
        }
        expect(c.eagerReason).to.match(/reads tensor data back to the host/);
        expect(c.compileStats.replays).to.equal(0);
        expect(c.compileStats.captures).to.equal(1);
        expect(c.explain({ print: false })).to.contain('runs eagerly for good');
      });

      it('a new input shape captures again; the old signature still replays', () => {
        const [net] = clone(() => new MLP(), device);
        const c = nn.compile(net);
        noGrad(() => {
          for (const batch of [4, 7, 4, 7, 1]) {
            const x = rand([batch, 12], { device });
            const y = c(x);
            expect(y.shape).to.deep.equal([batch, 5]);
            expectClose(y, net(x), tol(device), tol(device), `batch ${batch}`);
          }
        });
        expect(c.compileStats).to.include({ captures: 3, replays: 2 });
      });

      it('switching train/eval or autograd captures again', () => {
        const [net] = clone(() => new MLP(), device);
        const c = nn.compile(net);
        const x = rand([4, 12], { device });
        c(x);
        c.eval();
        c(x);
        noGrad(() => c(x));
        c.train();
        c(x);
        expect(c.compileStats).to.include({ captures: 3, replays: 1 });
      });

      it('replays see parameter updates (SGD steps) exactly as eager does', () => {
        const [eager, compiledNet] = clone(() => new MLP(), device);
        const c = nn.compile(compiledNet);
        const oe = new optim.SGD(eager.parameters(), { lr: 0.1, momentum: 0.9 });
        const oc = new optim.SGD(compiledNet.parameters(), { lr: 0.1, momentum: 0.9 });
        const x = rand([8, 12], { device });
        const target = tensor([0, 1, 2, 3, 4, 0, 1, 2], { device });
        for (let k = 0; k < 4; k++) {
          const le = tidy(() => {
            oe.zeroGrad();
            const l = F.crossEntropy(eager(x), target);
            l.backward();
            oe.step();
            return l.item();
          });
          const lc = tidy(() => {
            oc.zeroGrad();
            const l = F.crossEntropy(c(x), target);
            l.backward();
            oc.step();
            return l.item();
          });
          expect(Math.abs(lc - le)).to.be.at.most(1e-5 * Math.max(1, Math.abs(le)), `step ${k}`);
        }
        const pe = eager.parameters();
        compiledNet.parameters().forEach((p, i) => expectClose(p, pe[i], 1e-5, 1e-5, `param ${i}`));
      });

      it('in-place buffer updates in forward (BatchNorm running stats) happen on replays too', () => {
        const [eager, compiledNet] = clone(() => new Normed(), device);
        const c = nn.compile(compiledNet);
        for (let k = 0; k < 3; k++) {
          const x = rand([5, 6], { device });
          eager.zeroGrad();
          c.zeroGrad();
          const ye = eager(x);
          const yc = c(x);
          expectClose(yc, ye, tol(device), tol(device), `output ${k}`);
          ye.sum().backward();
          yc.sum().backward();
          const be = eager.namedBuffers();
          compiledNet.namedBuffers().forEach(([n, b], i) => expectClose(b, be[i][1], tol(device), tol(device), `${n} after call ${k}`));
          grads(compiledNet).forEach((g, i) => expectClose(g, grads(eager)[i], tol(device), tol(device), `grad ${i}`));
        }
        eager.eval();
        c.eval();
        const x = rand([4, 6], { device });
        noGrad(() => expectClose(c(x), eager(x), tol(device), tol(device), 'eval'));
        expect(c.compileStats.replays).to.equal(2);
      });

      it('a constant tensor made inside forward is captured as a constant', () => {
        const [net] = clone(() => new WithConst(), device);
        const c = nn.compile(net);
        noGrad(() => {
          for (let k = 0; k < 3; k++) {
            const x = rand([2, 3], { device });
            expectClose(c(x), net(x), tol(device), tol(device), `call ${k}`);
          }
        });
        expect(c.compileStats.replays).to.equal(2);
      });

      it(
        'an op that needs the output index joins an elementwise kernel, not the matmul epilogue',
        onGpujsMatmul(() => {
          const [net] = clone(() => new Masked(), device);
          const c = nn.compile(net);
          noGrad(() => {
            for (let k = 0; k < 3; k++) {
              const x = rand([5, 5], { device });
              expectClose(c(x), net(x), tol(device), tol(device), `call ${k}`);
            }
          });
          expect(c.explain({ print: false })).to.contain('add + causal_mask + clamp + add + relu');
        }),
      );

      it('a forward that does not return one tensor runs eagerly for that signature', () => {
        const [net] = clone(() => new Pair(), device);
        const c = nn.compile(net);
        const x = rand([3, 4], { device });
        const [a, b] = net(x);
        for (let k = 0; k < 2; k++) {
          const [ac, bc] = c(x);
          expectClose(ac, a, 0, 0, `call ${k}, first output`);
          expectClose(bc, b, 0, 0, `call ${k}, second output`);
        }
        expect(c.compileStats).to.include({ replays: 0, eagerCalls: 1, captures: 1 });
      });

      it('behaves as the model: parameters, stateDict, instanceof, its own hooks run around the plan', () => {
        const [net] = clone(() => new MLP(), device);
        const c = nn.compile(net);
        expect(c).to.be.instanceOf(nn.Module);
        expect(c.parameters()).to.deep.equal(net.parameters());
        expect(Object.keys(c.stateDict())).to.deep.equal(Object.keys(net.stateDict()));
        const x = rand([2, 12], { device });
        noGrad(() => {
          c(x);
          let seen = 0;
          const h = c.registerForwardHook(() => void seen++);
          c(x);
          c(x);
          expect(seen).to.equal(2);
          h.remove();
        });
        // the model's own hooks are not part of the graph: adding one does not capture again
        expect(c.compileStats).to.include({ captures: 1, replays: 2 });
      });

      it(
        'explain() prints the graph and the fused kernel sources',
        onGpujsMatmul(() => {
          const [net] = clone(() => new MLP(), device);
          const c = nn.compile(net);
          noGrad(() => c(rand([4, 12], { device })));
          const text = c.explain({ print: false });
          // host backends add two steps that pack W^T for the tiled matmul (reused while the weights are unchanged)
          expect(text).to.contain(`captured forward graph (${device === 'gpu' ? 5 : 7} kernels)`);
          expect(text).to.contain('matmul + add + relu');
          expect(text).to.contain('fused kernel');
          expect(text).to.match(/function\(in0/);
          expect(text).to.contain('hidden.weight');
          if (device !== 'gpu') expect(text).to.contain('= clone(hidden.weight)   (parameters only: reused until they change)');
        }),
      );
    });
  }
});

/** Observing hooks on a Deep (its own pre-hook and hook, and the middle layer's): the order of calls and what each was handed. */
function instrument(m: Deep): { calls: string[]; seen: Tensor[] } {
  const log = { calls: [] as string[], seen: [] as Tensor[] };
  const note = (what: string, t: unknown) => {
    log.calls.push(what);
    log.seen.push(t as Tensor);
  };
  m.registerForwardPreHook((_m, args) => note('model pre', args[0]));
  m.registerForwardHook((_m, _a, out) => note('model hook', out));
  // returning exactly what a hook was handed is observing too
  m.b.registerForwardPreHook((_m, args) => (note('b pre', args[0]), args));
  m.b.registerForwardHook((_m, _a, out) => (note('b hook', out), out));
  return log;
}

describe('graph: nn.compile keeps eager meaning (hooks, dropout)', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      for (const where of ['the model', 'an inner module'] as const) {
        it(`hooks are keyed by identity (${where}): after remove() and a new hook, replays do not apply the old one`, () => {
          const [eager, net] = clone(() => new Deep(), device);
          const c = nn.compile(net);
          const on = (m: Deep) => (where === 'the model' ? m : m.b);
          const x = rand([4, 6], { device });
          let seenE = 0;
          let seenC = 0;
          noGrad(() => {
            const zeroE = on(eager).registerForwardHook((_m, _a, out) => (out as Tensor).mul(0));
            const zeroC = on(net).registerForwardHook((_m, _a, out) => (out as Tensor).mul(0));
            for (let k = 0; k < 2; k++) expectClose(c(x), eager(x), tol(device), tol(device), `zeroing hook, call ${k}`);
            zeroE.remove();
            zeroC.remove();
            on(eager).registerForwardHook(() => void seenE++);
            on(net).registerForwardHook(() => void seenC++);
            for (let k = 0; k < 3; k++) {
              const ye = eager(x);
              expect(ye.abs().sum().item()).to.be.greaterThan(0);
              expectClose(c(x), ye, tol(device), tol(device), `observing hook, call ${k}`);
            }
          });
          expect(seenC).to.equal(seenE).and.to.equal(3);
          expect(c.compileStats.replays).to.be.greaterThan(0);
        });
      }

      it('observing pre-hooks and hooks (the model and an inner module) run on every call, in eager order, with the tensors eager hands them', () => {
        const [eager, net] = clone(() => new Deep(), device);
        const c = nn.compile(net);
        const logE = instrument(eager);
        const logC = instrument(net);
        noGrad(() => {
          for (let k = 0; k < 4; k++) {
            const x = rand([5, 6], { device });
            expectClose(c(x), eager(x), tol(device), tol(device), `call ${k}`);
          }
        });
        expect(logC.calls).to.deep.equal(logE.calls);
        expect(logC.calls).to.have.length(16);
        // compared after all calls: what a hook kept stays valid
        logC.seen.forEach((t, i) => expectClose(t, logE.seen[i], tol(device), tol(device), `${logC.calls[i]}, call ${i >> 2}`));
        // observing does not force eager mode
        expect(c.compileStats).to.include({ captures: 1, replays: 3, eagerCalls: 0 });
      });

      it('a loss built from activations a hook captured trains as in eager mode', () => {
        const [eager, net] = clone(() => new Deep(), device);
        const c = nn.compile(net);
        const keep = (m: Deep, acts: Tensor[]) => {
          m.b.registerForwardPreHook((_m, args) => void acts.push(args[0] as Tensor));
          m.b.registerForwardHook((_m, _a, out) => void acts.push(out as Tensor));
        };
        const actsE: Tensor[] = [];
        const actsC: Tensor[] = [];
        keep(eager, actsE);
        keep(net, actsC);
        for (let k = 0; k < 3; k++) {
          const x = rand([4, 6], { device });
          eager.zeroGrad();
          net.zeroGrad();
          const loss = (y: Tensor, acts: Tensor[]) =>
            y
              .sum()
              .add(acts[2 * k].pow(2).mean())
              .add(
                acts[2 * k + 1]
                  .mul(acts[2 * k + 1])
                  .sum()
                  .mul(0.1),
              );
          const le = loss(eager(x), actsE);
          const lc = loss(c(x), actsC);
          expectClose(lc, le, tol(device), tol(device), `loss ${k}`);
          le.backward();
          lc.backward();
          const ge = grads(eager);
          grads(net).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `call ${k}, grad of ${eager.namedParameters()[i][0]}`));
        }
        expect(c.compileStats).to.include({ captures: 1, replays: 2, eagerCalls: 0 });
      });

      it('hooks that replace arguments or the output give eager results and run as often as in eager mode', () => {
        const [eager, net] = clone(() => new Deep(), device);
        const c = nn.compile(net);
        let scale = 1;
        const counts = new Map<string, number>();
        const count = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1);
        const hooks = (m: Deep, tag: string) => {
          m.registerForwardPreHook((_m, args) => (count(`${tag} pre`), (args[0] as Tensor).mul(scale)));
          m.registerForwardHook((_m, _a, out) => (count(`${tag} hook`), (out as Tensor).add(scale)));
          // an inner hook that replaces the output (its signature runs eagerly) ...
          const inner = m.b.registerForwardHook((_m, _a, out) => (count(`${tag} b hook`), (out as Tensor).mul(-scale)));
          // ... and one that returns nothing but writes to what it is handed: it changes the computation too
          const inPlace = m.a.registerForwardHook((_m, _a, out) => (count(`${tag} a hook`), void noGrad(() => (out as Tensor).mul_(0.5))));
          return [inner, inPlace];
        };
        const innerE = hooks(eager, 'e');
        const innerC = hooks(net, 'c');
        const step = (k: number) => {
          scale = k + 1;
          const x = rand([3, 6], { device });
          eager.zeroGrad();
          net.zeroGrad();
          const ye = eager(x);
          const yc = c(x);
          expectClose(yc, ye, tol(device), tol(device), `output, scale ${scale}`);
          ye.sum().backward();
          yc.sum().backward();
          const ge = grads(eager);
          grads(net).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `scale ${scale}, grad ${i}`));
        };
        for (let k = 0; k < 3; k++) step(k);
        expect(c.compileStats).to.include({ captures: 1, replays: 0, eagerCalls: 2 });
        // without the inner ones, the model's own replacing hooks run around a replayed plan
        for (const h of [...innerE, ...innerC]) h.remove();
        for (let k = 3; k < 6; k++) step(k);
        expect(c.compileStats).to.include({ captures: 2, replays: 2 });
        for (const tag of ['pre', 'hook'])
          expect(counts.get(`c ${tag}`))
            .to.equal(counts.get(`e ${tag}`))
            .and.to.equal(6);
        for (const tag of ['a hook', 'b hook'])
          expect(counts.get(`c ${tag}`))
            .to.equal(counts.get(`e ${tag}`))
            .and.to.equal(3);
      });

      it('an inner hook that starts returning a value on a replay is a clear error, and that signature then runs eagerly', () => {
        const [eager, net] = clone(() => new Deep(), device);
        const c = nn.compile(net);
        let replace = false;
        for (const m of [eager, net]) m.b.registerForwardHook((_m, _a, out) => (replace ? (out as Tensor).mul(0) : undefined));
        const x = rand([2, 6], { device });
        noGrad(() => {
          c(x);
          c(x);
          replace = true;
          expect(() => c(x)).to.throw(/forward hook of 'b' \(Linear\) returned a new output on a replay/);
          expectClose(c(x), eager(x), tol(device), tol(device), 'after the error');
        });
        expect(c.compileStats).to.include({ captures: 1, replays: 1, eagerCalls: 1 });
      });

      it("dropout: training replays draw eager's masks under the same seed; eval compiles; train -> eval -> train keeps compiling", () => {
        const [eager, net] = clone(() => new Dropped(), device);
        const c = nn.compile(net);
        // a hook that draws random numbers too: replays keep eager's order of draws
        const noise: Tensor[][] = [[], []];
        eager.fc.registerForwardHook(() => void noise[0].push(rand([3], { device })));
        net.fc.registerForwardHook(() => void noise[1].push(rand([3], { device })));
        const x = rand([6, 10], { device });
        const target = tensor([0, 1, 2, 3, 0, 1], { device });
        const modes = ['train', 'train', 'train', 'eval', 'eval', 'train', 'train', 'eval'];
        modes.forEach((mode, k) => {
          for (const m of [eager, net]) m.train(mode === 'train');
          eager.zeroGrad();
          net.zeroGrad();
          manualSeed(100 + k);
          const le = F.crossEntropy(eager(x), target);
          manualSeed(100 + k);
          const lc = F.crossEntropy(c(x), target);
          expectClose(lc, le, tol(device), tol(device), `${mode} call ${k}: loss`);
          le.backward();
          lc.backward();
          const ge = grads(eager);
          grads(net).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `${mode} call ${k}: grad ${i}`));
        });
        noise[1].forEach((t, i) => expectClose(t, noise[0][i], 0, 0, `hook's draw ${i}`));
        expect(c.eagerReason).to.equal(null);
        expect(c.compileStats).to.include({ captures: 2, replays: 6, eagerCalls: 0 });
      });

      it('dropout in eval mode: the replay equals eager exactly (unfused kernels)', () => {
        const [eager, net] = clone(() => new Dropped(), device);
        const c = nn.compile(net, { fuse: false });
        net.train();
        noGrad(() => c(rand([4, 10], { device }))); // a training call first
        for (const m of [eager, net]) m.eval();
        noGrad(() => {
          for (let k = 0; k < 3; k++) {
            const x = rand([4, 10], { device });
            expectClose(c(x), eager(x), 0, 0, `eval call ${k}`);
          }
        });
        expect(c.compileStats).to.include({ captures: 2, replays: 2, eagerCalls: 0 });
      });

      it('a random draw the backward reads (reparameterisation): replays equal eager under the same seed, outputs and gradients', () => {
        const [eager, net] = clone(() => new Sampled(), device);
        const c = nn.compile(net);
        const x = rand([4, 5], { device });
        const outs: number[][] = [];
        for (let k = 0; k < 3; k++) {
          eager.zeroGrad();
          net.zeroGrad();
          manualSeed(7 + k);
          const ye = eager(x);
          manualSeed(7 + k);
          const yc = c(x);
          expectClose(yc, ye, tol(device), tol(device), `call ${k}`);
          outs.push(Array.from(yc.dataSync()));
          ye.pow(2).sum().backward();
          yc.pow(2).sum().backward();
          const ge = grads(eager);
          grads(net).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `call ${k}, grad of ${eager.namedParameters()[i][0]}`));
        }
        expect(outs[2]).to.not.deep.equal(outs[1], 'two replays draw different samples');
        expect(c.compileStats).to.include({ captures: 1, replays: 2, eagerCalls: 0 });
      });

      it('hooks see in-place buffer updates (BatchNorm running stats) exactly when eager mode makes them', () => {
        const [eager, net] = clone(() => new Normed(), device);
        const c = nn.compile(net);
        const seen: Tensor[][] = [[], []];
        [eager, net].forEach((m, i) => {
          const mean = () => (m.bn as any).running_mean as Tensor;
          m.bn.registerForwardPreHook(() => void seen[i].push(mean().clone()));
          m.head.registerForwardHook(() => void seen[i].push(mean().clone()));
        });
        for (let k = 0; k < 3; k++) {
          const x = rand([5, 6], { device });
          expectClose(c(x), eager(x), tol(device), tol(device), `call ${k}`);
        }
        expect(seen[1]).to.have.length(6);
        seen[1].forEach((t, i) => expectClose(t, seen[0][i], tol(device), tol(device), `running_mean seen by hook ${i}`));
        expect(seen[1][1].dataSync()).to.not.deep.equal(seen[1][0].dataSync(), 'the later hook sees the update');
        expect(c.compileStats).to.include({ captures: 1, replays: 2 });
      });

      it('randomness that steers control flow makes only the signatures that draw it eager', () => {
        const [eager, net] = clone(() => new Skipping(), device);
        const c = nn.compile(net);
        const x = rand([2, 4], { device });
        noGrad(() => {
          for (const mode of ['train', 'train', 'train', 'eval', 'eval', 'eval', 'train']) {
            for (const m of [eager, net]) m.train(mode === 'train');
            for (let k = 0; k < 2; k++) {
              manualSeed(k);
              const ye = eager(x);
              manualSeed(k);
              expectClose(c(x), ye, tol(device), tol(device), `${mode}, seed ${k}`);
            }
          }
        });
        expect(c.eagerReason).to.equal(null);
        expect(c.compileStats).to.include({ captures: 2, replays: 5, eagerCalls: 7 });
      });

      it('dropout replays: a new mask on every call, with the right statistics', () => {
        const p = 0.3;
        const c = nn.compile(new nn.Dropout(p));
        const x = ones([64, 64], { device });
        const masks = noGrad(() => [0, 1, 2, 3].map(() => Array.from(c(x).dataSync())));
        expect(c.compileStats).to.include({ captures: 1, replays: 3 });
        const keep = 1 / (1 - p);
        masks.forEach((m, i) => {
          expect(
            m.every((v) => v === 0 || Math.abs(v - keep) < 1e-6),
            `mask ${i} holds 0 and 1/(1-p) only`,
          ).to.equal(true);
          // 4096 draws: the dropped fraction's standard deviation is 0.007
          expect(m.filter((v) => v === 0).length / m.length).to.be.closeTo(p, 0.04, `mask ${i}: dropped fraction`);
        });
        for (let i = 1; i < masks.length; i++) {
          for (let j = 0; j < i; j++) {
            // independent masks differ in 2p(1-p) = 42% of places
            const differ = masks[i].filter((v, e) => v !== masks[j][e]).length / masks[i].length;
            expect(differ).to.be.closeTo(2 * p * (1 - p), 0.05, `masks ${j} and ${i}`);
          }
        }
      });
    });
  }
});
