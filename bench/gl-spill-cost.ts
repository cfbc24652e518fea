/**
 * What spilling costs on `gpu` (gl-residency.ts): the soak bench's MLP (64-96-10, batch 32, Adam) in blocks of
 * steps, interleaved in one process so the machine's load hits each alike: (a) plain loop, never yielding,
 * over a small texture budget (spilling ~14 textures a step), (b) the same loop with a budget it never
 * reaches (nothing spilled; the textures pile up until the block ends and the event loop turns), (c) the
 * async loop (`await loss.data()` each step: finalizers free the textures, nothing spilled). Prints ms/step
 * per block and the median of each.
 *   node dist/bench/gl-spill-cost.js [--steps 200] [--rounds 3] [--budget 16] [--compiled]
 */
import { Command } from 'commander';
import { nn, F, optim, randn, tensor, manualSeed, setBackendOptions, Tensor } from '../src';
import { backendFor } from '../src/backend/devices';

const opts = new Command()
  .option('--steps <n>', 'steps per block', (v) => parseInt(v, 10), 200)
  .option('--rounds <n>', 'rounds of the three blocks', (v) => parseInt(v, 10), 3)
  .option('--budget <mb>', 'the small budget (MiB)', parseFloat, 16)
  .option('--compiled', 'through nn.compile')
  .parse()
  .opts();

const turn = () => new Promise((r) => setImmediate(r));

async function main(): Promise<void> {
  manualSeed(0);
  const net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10)).to('gpu');
  const model = opts.compiled ? nn.compile(net) : net;
  const opt = optim.Adam(net.parameters(), { lr: 1e-3 });
  const x = randn([32, 64], { device: 'gpu' });
  const y = tensor(
    Array.from({ length: 32 }, (_, i) => i % 10),
    { device: 'gpu' },
  );
  const backend = backendFor('gpu');
  const stats = backend.stats;
  // the time spent in spills themselves (read-back and delete), less exposed to the load than a whole step
  let spillMs = 0;
  const spill = backend.residency.spill.bind(backend.residency);
  backend.residency.spill = (slot) => {
    const t = performance.now();
    spill(slot);
    spillMs += performance.now() - t;
  };
  const step = (): Tensor => {
    opt.zeroGrad();
    const loss = F.crossEntropy(model(x) as Tensor, y);
    loss.backward();
    opt.step();
    return loss;
  };
  const times: Record<string, number[]> = { spilling: [], unbounded: [], async: [] };
  const block = async (name: string): Promise<void> => {
    setBackendOptions({ glTextureBudgetMb: name === 'spilling' ? opts.budget : 1e6 });
    const s0 = stats.spills;
    const sp0 = spillMs;
    const t0 = performance.now();
    if (name === 'async') for (let i = 0; i < opts.steps; i++) await step().data();
    else for (let i = 0; i < opts.steps; i++) step().item(); // item(): the same read-back as the async loop's, synchronous
    const ms = (performance.now() - t0) / opts.steps;
    times[name].push(ms);
    const spills = stats.spills - s0;
    const inSpill = spills
      ? `, ${((spillMs - sp0) / opts.steps).toFixed(2)} ms/step in spills (${((spillMs - sp0) / spills).toFixed(3)} ms each)`
      : '';
    console.log(`${name}\t${ms.toFixed(2)} ms/step\tspills/step ${(spills / opts.steps).toFixed(1)}${inSpill}\tresident ${stats.resident}`);
    // let finalizers delete what the block dropped, so the next block starts alike
    for (let k = 0; k < 4; k++) {
      (globalThis as { gc?: () => void }).gc?.();
      await turn();
    }
  };
  for (let i = 0; i < 20; i++) step().item(); // warm-up: kernels compiled
  for (let r = 0; r < opts.rounds; r++) for (const name of ['spilling', 'unbounded', 'async']) await block(name);
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  console.log(
    `median ms/step${opts.compiled ? ' (compiled)' : ''}: spilling ${m.spilling.toFixed(2)}, unbounded ${m.unbounded.toFixed(2)}, async ${m.async.toFixed(2)}; ` +
      `spilling / async ${(m.spilling / m.async).toFixed(2)}x, spilling / unbounded ${(m.spilling / m.unbounded).toFixed(2)}x`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
