/**
 * A PyTorch-style training loop — synchronous, no tidy(), no dispose(), no await, every intermediate
 * dropped by reassignment — keeps memory flat: a tensor owns its device buffer and nothing global holds
 * it, so the garbage collector reclaims host memory inside the loop (before the event loop ever turns).
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { backendFor, nn, F, optim, randn, tensor, manualSeed, setBackendOptions, Tensor, DeviceName } from '../../src';
import { testDevices } from '../helpers';

v8.setFlagsFromString('--expose-gc');
const gc: () => void = vm.runInNewContext('gc');
const MiB = 2 ** 20;
const hostMemory = () => process.memoryUsage().arrayBuffers;
/** Lets the event loop turn so finalizers run (GL textures are deleted there), then collects again. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

function setup(device: DeviceName, compiled: boolean) {
  manualSeed(0);
  const net = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)).to(device);
  const model = compiled ? nn.compile(net) : net;
  const opt = optim.Adam(net.parameters(), { lr: 1e-3 });
  const x = randn([64, 128], { device });
  const y = tensor(
    Array.from({ length: 64 }, (_, i) => i % 10),
    { device },
  );
  const step = (): number => {
    opt.zeroGrad();
    const loss = F.crossEntropy(model(x) as Tensor, y);
    loss.backward();
    opt.step();
    return loss.item();
  };
  return { step };
}

describe('memory: a plain synchronous training loop (no tidy, no dispose, no await) stays flat', function () {
  this.timeout(180000);
  for (const device of testDevices()) {
    for (const compiled of [false, true]) {
      const steps = device === 'gpu' ? 150 : 400;
      const what = `${device}${compiled ? ', compiled' : ''}`;
      it(`${what}: ${steps} Adam steps; host memory bounded inside the loop, live buffers bounded after it`, async () => {
        const stats = backendFor(device).stats;
        await settle();
        const liveBefore = stats.live;
        const { step } = setup(device, compiled);
        const first = step();
        let hostAt50 = 0;
        let last = first;
        let grown: number;
        // one thread: arrays shared with worker threads are freed only once the workers collect them too,
        // which would move the measurement by tens of MiB either way
        const threads = process.env.TSNN_THREADS;
        process.env.TSNN_THREADS = '1';
        // GL: a small texture budget, so the dropped outputs' textures are spilled inside the loop (gl-residency.ts)
        if (device === 'gpu') setBackendOptions({ glTextureBudgetMb: 2 });
        let liveInLoop = 0;
        try {
          for (let i = 1; i <= steps; i++) {
            last = step();
            if (i === 50) {
              gc();
              hostAt50 = hostMemory();
            }
          }
          gc(); // synchronous: no finalizer has run, the loop never yielded
          grown = (hostMemory() - hostAt50) / MiB;
          liveInLoop = stats.live - liveBefore;
        } finally {
          setBackendOptions({ glTextureBudgetMb: undefined });
          if (threads === undefined) delete process.env.TSNN_THREADS;
          else process.env.TSNN_THREADS = threads;
        }
        // each step makes ~30 buffers of up to 32 KiB: holding them grows this by ~100 MiB
        expect(grown, `host memory grown from step 50 to ${steps} (MiB)`).to.be.lessThan(24);
        // GL: 2 MiB holds at most 512 textures (each charged 4 KiB at least); without the budget, 14 a step
        // of the forward's outputs would still be there (2,100), their finalizers waiting for the loop to yield
        if (device === 'gpu') expect(liveInLoop, 'textures not deleted nor spilled, inside the loop').to.be.lessThan(600);
        expect(last).to.be.lessThan(first);
        await settle();
        // GL textures are deleted by finalizers once the event loop turns: then only the model's own buffers
        // (parameters, grads, Adam state, packed weights) and the last step's are left. (Host buffers are
        // freed by the collector without a finalizer, so the count does not see them go: see BackendStats.)
        if (device === 'gpu') expect(stats.live - liveBefore, 'live textures after the loop, once collected').to.be.lessThan(80);
        else expect((hostMemory() - hostAt50) / MiB, 'host memory after the loop, once collected (MiB)').to.be.lessThan(24);
      });
    }
  }

  // Autograd frees what it made (the gradients flowing between nodes, the rules' temporaries) as soon as a
  // step's backward is done, on every device: the only buffers a backward leaves are the new `.grad`s, and
  // the only other ones a whole step leaves are its forward's (which the user may hold: those wait for the
  // collector). Before, a backward left 15 buffers here, 11 of them garbage (on GL: textures until a finalizer).
  for (const device of testDevices()) {
    for (const compiled of [false, true]) {
      it(`${device}${compiled ? ', compiled' : ''}: a backward leaves exactly the new .grads; a step leaves only its forward's and the .grads`, () => {
        const stats = backendFor(device).stats;
        manualSeed(0);
        const net = nn.Sequential(nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 5)).to(device);
        const model = compiled ? nn.compile(net) : net;
        const opt = optim.Adam(net.parameters(), { lr: 1e-3 });
        const x = randn([8, 16], { device });
        const y = tensor([0, 1, 2, 3, 4, 0, 1, 2], { device });
        const params = net.parameters();
        for (let i = 0; i < 6; i++) {
          opt.zeroGrad();
          const start = stats.live;
          // eager: the user keeps the first layer's output, which the graph saves too (autograd must not free it)
          const h = compiled ? null : (net.at(0)(x) as Tensor);
          const rest = (t: Tensor) => net.at(2)(net.at(1)(t)) as Tensor;
          const loss = F.crossEntropy(h ? rest(h) : (model(x) as Tensor), y);
          const forward = stats.live - start;
          const hValues = h?.toArray();
          const beforeBackward = stats.live;
          loss.backward();
          if (i >= 2) expect(stats.live - beforeBackward, `step ${i}: buffers left by backward`).to.equal(params.length);
          if (h) expect(h.toArray(), "the user's activation is untouched").to.deep.equal(hValues);
          opt.step();
          if (i >= 2) expect(stats.live - start, `step ${i}: buffers left by the step (after zeroGrad)`).to.equal(forward + params.length);
        }
        for (const p of params) expect(p.grad!.isDisposed).to.equal(false);
      });
    }
  }

  if (testDevices().includes('gpu')) {
    // headless-gl reads back synchronously: unless data() yields a real turn of the event loop, an
    // `await loss.data()` loop only runs microtasks and finalizers never delete a texture (before: +14 a step)
    it('gpu: an `await loss.data()` loop lets finalizers delete the textures of dropped tensors', async () => {
      const stats = backendFor('gpu').stats;
      const { step } = setup('gpu', false);
      const lossOf = (): Tensor => {
        step();
        return randn([1], { device: 'gpu' }).add(1); // a fresh texture the loop drops, read back like a loss
      };
      await settle();
      const before = stats.live;
      for (let i = 1; i <= 120; i++) {
        if (i % 20 === 0) gc(); // the collector finds the dropped buffers; their finalizers still need a turn
        await lossOf().data();
      }
      expect(stats.live - before, 'textures after 120 steps of an async loop').to.be.lessThan(600);
    });
  }

  it('`using` disposes a tensor at the end of its block (TypeScript 5.2+ explicit resource management)', () => {
    let t: Tensor;
    {
      using scoped = randn([4, 4]);
      t = scoped;
      expect(t.isDisposed).to.equal(false);
    }
    expect(t.isDisposed).to.equal(true);
  });
});
