/**
 * GL memory as a bounded cache over host memory (src/backend/gl-residency.ts): past glTextureBudgetMb the
 * least recently used textures are spilled to the host and uploaded again when next read. A training loop
 * that never yields (no await, no tidy) keeps its textures under the budget, with the same results as an
 * unbounded run; a spilled buffer round-trips exactly; a finalizer after a spill deletes nothing twice.
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { F, nn, noGrad, optim, rand, randn, tensor, manualSeed, setBackendOptions, getBackendOptions, Tensor } from '../../src';
import { backendFor } from '../../src/backend/devices';
import { GlSlot, MIN_TEXTURE_CHARGE } from '../../src/backend/gl-residency';
import { matmulVariant } from '../../src/ops/matmul';
import { testDevices } from '../helpers';

v8.setFlagsFromString('--expose-gc');
const gc: () => void = vm.runInNewContext('gc');
const turn = () => new Promise((r) => setImmediate(r));

/** Counts the deletes of a slot's texture in deletes[k]. (A function apart: a closure made in the test itself kept the tensor alive.) */
function countDeletes(slot: GlSlot, deletes: number[], k: number): void {
  const tex = slot.texture!;
  const del = tex.delete.bind(tex);
  tex.delete = () => {
    deletes[k]++;
    del();
  };
}

describe('GL texture budget: option', () => {
  it('glTextureBudgetMb is validated like the other options, and set and unset', () => {
    for (const bad of [0, -1, NaN, Infinity, '64', null])
      expect(() => setBackendOptions({ glTextureBudgetMb: bad as unknown as number }), String(bad)).to.throw(
        TypeError,
        /option 'glTextureBudgetMb' must be a number of MiB > 0/,
      );
    try {
      expect(setBackendOptions({ glTextureBudgetMb: 0.5 }).glTextureBudgetMb).to.equal(0.5);
    } finally {
      setBackendOptions({ glTextureBudgetMb: undefined });
    }
    expect(getBackendOptions().glTextureBudgetMb).to.equal(undefined);
  });
});

(testDevices().includes('gpu') ? describe : describe.skip)('GL texture budget: spilling to host memory (gpu)', function () {
  this.timeout(180000);
  const gl = () => backendFor('gpu');
  const slotOf = (t: Tensor): GlSlot => t.storage.buffer.gl!;
  afterEach(() => setBackendOptions({ glTextureBudgetMb: undefined }));

  it('a spilled buffer is read back exactly, and uploaded again with the same values when a kernel reads it', () => {
    manualSeed(3);
    const a = rand([9, 16], { device: 'gpu' }).sub(0.5);
    const b = rand([16, 12], { device: 'gpu' }).sub(0.5);
    // kernel outputs: textures with no host copy, so spilling them needs a read-back
    const x = noGrad(() => a.mul(3));
    const w = noGrad(() => b.mul(2));
    // the tiled kernel reads x a texel at a time (its Array(4) view)
    expect(matmulVariant({ batch: [], M: 9, K: 16, N: 12, device: 'gpu' })).to.equal('quads');
    const want = noGrad(() => x.matmul(w))
      .dataSync()
      .slice();
    const wantAdd = noGrad(() => x.add(1))
      .dataSync()
      .slice();
    expect(slotOf(x).quads, 'x was read through its Array(4) view').to.not.equal(null);
    const av = a.dataSync();
    const s = gl().stats;
    const before = { ...s };
    for (const t of [x, w]) gl().residency.spill(slotOf(t));
    expect(s.spills - before.spills).to.equal(2);
    expect(s.spillReadbacks - before.spillReadbacks).to.equal(2);
    expect(s.resident - before.resident).to.equal(-2);
    expect(s.live - before.live, 'spilled buffers hold host memory only').to.equal(-2);
    for (const t of [x, w]) expect(slotOf(t).texture).to.equal(null);
    // the host copies are the values (a read costs nothing more)
    expect(Array.from(x.dataSync())).to.deep.equal(Array.from(av, (v) => Math.fround(v * 3)));
    expect(s.readbacks).to.equal(before.readbacks);
    // read again by kernels: uploaded from the host copies, same results bit for bit
    expect(Array.from(noGrad(() => x.matmul(w)).dataSync())).to.deep.equal(Array.from(want));
    expect(Array.from(noGrad(() => x.add(1)).dataSync())).to.deep.equal(Array.from(wantAdd));
    expect(s.reuploads - before.reuploads).to.equal(2);
    expect(s.live - before.live, 'resident again').to.be.at.least(0);
    // a spilled buffer with a host copy spills again without a read-back
    gl().residency.spill(slotOf(x));
    expect(s.spillReadbacks - before.spillReadbacks).to.equal(2);
    x.dispose();
    w.dispose();
  });

  it('a budget below one kernel: each kernel keeps its own inputs and output resident until it is done; same values', () => {
    manualSeed(5);
    const a0 = rand([9, 16]).sub(0.5);
    const b0 = rand([16, 12]).sub(0.5);
    const chain = () => {
      const a = a0.to('gpu');
      const b = b0.to('gpu');
      const h = noGrad(() => a.matmul(b).relu());
      const out = noGrad(() => h.add(h.mul(h)).sum(1).add(a.sum(1)).sub(b.mean()));
      return { out: Array.from(out.dataSync()), h: Array.from(h.dataSync()) };
    };
    const want = chain();
    const s = gl().stats;
    setBackendOptions({ glTextureBudgetMb: 0.001 }); // 1 KiB: less than one texture is charged
    const spills0 = s.spills;
    const got = chain();
    const resident = s.resident;
    setBackendOptions({ glTextureBudgetMb: undefined });
    expect(s.spills - spills0, 'spilled after every kernel').to.be.at.least(8);
    expect(got).to.deep.equal(want);
    // after the last kernel, nothing but its own inputs and output is resident (earlier tests' leftovers spilled too)
    expect(resident).to.be.at.most(3);
  });

  it('the host copy of a spilled buffer is freed by the collector with the buffer, without the event loop turning', () => {
    const src = rand([1 << 20], { device: 'gpu' });
    // in a function of its own: a frame's stale registers would keep the tensor alive while it runs
    const spillOne = (): number => {
      const t = noGrad(() => src.mul(2));
      gl().residency.spill(slotOf(t)); // read back: a 4 MiB host copy
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const held = spillOne();
    gc(); // synchronous: no finalizer can run before this returns, so only the collector frees it
    const freed = (held - process.memoryUsage().arrayBuffers) / 2 ** 20;
    expect(freed, 'MiB freed').to.be.at.least(3.9);
    expect(src.shape).to.deep.equal([1 << 20]);
  });

  it('a finalizer after a spill deletes nothing twice; one for a resident buffer deletes its texture once', async () => {
    const s = gl().stats;
    const settle = async () => {
      for (let i = 0; i < 4; i++) {
        gc();
        await turn();
      }
    };
    await settle(); // the earlier tests' garbage, so that the counts below are this test's
    const deletes = [0, 0];
    const src = rand([64], { device: 'gpu' }); // kept to the end: only the two below are dropped
    let spilled: Tensor | null = noGrad(() => src.mul(2));
    let kept: Tensor | null = noGrad(() => src.mul(3));
    countDeletes(slotOf(spilled), deletes, 0);
    countDeletes(slotOf(kept), deletes, 1);
    gl().residency.spill(slotOf(spilled));
    expect(deletes).to.deep.equal([1, 0]);
    await turn();
    const resident0 = s.resident;
    const live0 = s.live;
    spilled = null;
    kept = null;
    await settle();
    expect(deletes, 'textures deleted (spilled, resident)').to.deep.equal([1, 1]);
    expect(s.resident, 'the resident one is gone').to.equal(resident0 - 1);
    expect(s.live, 'counted once: the spilled one left the count when spilled').to.equal(live0 - 1);
    expect(src.dataSync()).to.have.length(64);
  });

  // A synchronous loop that never yields: the forward's textures are garbage the finalizers would delete only
  // once the loop yields. With a small budget they are spilled instead, and the results are those of a run
  // that kept everything.
  for (const compiled of [false, true]) {
    it(`a loop that never yields${compiled ? ' (nn.compile)' : ''}: textures stay under the budget, results equal an unbounded run`, async () => {
      const steps = 120;
      const budgetMb = 2;
      const run = (budget: number | undefined) => {
        setBackendOptions({ glTextureBudgetMb: budget });
        manualSeed(0);
        const net = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)).to('gpu');
        const model = compiled ? nn.compile(net) : net;
        const opt = optim.Adam(net.parameters(), { lr: 1e-3 });
        const x = randn([64, 128], { device: 'gpu' });
        const y = tensor(
          Array.from({ length: 64 }, (_, i) => i % 10),
          { device: 'gpu' },
        );
        const s = gl().stats;
        const live0 = s.live;
        const spills0 = s.spills;
        const losses: number[] = [];
        let maxBytes = 0;
        let maxLive = 0;
        for (let i = 0; i < steps; i++) {
          opt.zeroGrad();
          const loss = F.crossEntropy(model(x) as Tensor, y);
          loss.backward();
          opt.step();
          losses.push(loss.item());
          maxBytes = Math.max(maxBytes, s.residentBytes);
          maxLive = Math.max(maxLive, s.live - live0);
        }
        const params = net.parameters().map((p) => Array.from(p.dataSync()));
        return { losses, params, maxBytes, maxLive, spills: s.spills - spills0 };
      };
      await turn();
      gc();
      await turn();
      const bounded = run(budgetMb);
      const unbounded = run(undefined);
      expect(bounded.spills, 'the budget was reached').to.be.greaterThan(steps);
      // one kernel's own inputs and output may go over it until the kernel is done
      expect(bounded.maxBytes, 'resident texture bytes').to.be.at.most(budgetMb * 2 ** 20 + 64 * MIN_TEXTURE_CHARGE);
      // 14 textures a step of garbage: 1,680 without the budget
      expect(bounded.maxLive, 'textures not deleted nor spilled, inside the loop').to.be.lessThan(600);
      expect(unbounded.spills).to.equal(0);
      expect(unbounded.maxLive, 'the unbounded run does pile up').to.be.greaterThan(10 * steps);
      expect(bounded.losses).to.deep.equal(unbounded.losses);
      expect(bounded.params).to.deep.equal(unbounded.params);
      expect(bounded.losses[steps - 1]).to.be.lessThan(bounded.losses[0]);
    });
  }
});
