/**
 * nn.compile: a compiled model gives eager's outputs and gradients (capture call and replays), re-captures
 * on a new signature (shapes, training mode), falls back to eager for good on data-dependent control
 * flow, follows parameter updates, and explain() shows the fused kernels. No timings here.
 */
import { expect } from 'chai';
import { nn, F, Tensor, child, manualSeed, noGrad, rand, tensor, tidy, optim } from '../../src';
import type { DeviceName } from '../../src';
import { expectClose, testDevices } from '../helpers';

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
    return this.fc(x).mul(tensor([1, 2, 3], { device: x.device })).add(1);
  }
}

/** An elementwise op whose expression reads the output index (the causal mask): fuses, but not into a matmul epilogue. */
class Masked extends nn.Module {
  @child fc = new nn.Linear(5, 5);
  forward(x: Tensor): Tensor {
    return this.fc(x).add(nn.generateSquareSubsequentMask(5, x.device).clamp(-5, 0)).relu();
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

      it('packed weights: reused across inference replays, recomputed after an in-place weight change', () => {
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
      });

      it('an MLP: loss and gradients equal eager, on the capture call and on replays', () => {
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
          grads(compiledNet).forEach((g, i) => expectClose(g, ge[i], tol(device), tol(device), `call ${k}, grad of ${eager.namedParameters()[i][0]}`));
        }
        expect(c.compileStats).to.include({ captures: 1, replays: 2, eagerCalls: 0 });
        // relu's backward mask reads relu's output, so relu fuses into the matmul epilogue with autograd on too
        const text = c.explain({ print: false });
        expect(text).to.contain("reads relu's output");
        expect(text).to.contain('forward program: 5 captured kernels -> 2 kernels');
      });

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

      it('an op that needs the output index joins an elementwise kernel, not the matmul epilogue', () => {
        const [net] = clone(() => new Masked(), device);
        const c = nn.compile(net);
        noGrad(() => {
          for (let k = 0; k < 3; k++) {
            const x = rand([5, 5], { device });
            expectClose(c(x), net(x), tol(device), tol(device), `call ${k}`);
          }
        });
        expect(c.explain({ print: false })).to.contain('add + causal_mask + clamp + add + relu');
      });

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

      it('behaves as the model: parameters, stateDict, instanceof, hooks re-capture', () => {
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
          expect(seen).to.equal(1);
          h.remove();
        });
        expect(c.compileStats.captures).to.equal(2);
      });

      it('explain() prints the graph and the fused kernel sources', () => {
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
      });
    });
  }
});
