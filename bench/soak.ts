/**
 * `npm run bench:soak`: memory over a long training run, the way users write the loop.
 *
 * Loops: (a) plain — synchronous, no tidy, no dispose, no await (PyTorch style); (b) tidy — each step
 * inside tidy(); (c) async — `await loss.data()` each step. Each eager and through nn.compile, on every
 * device here. A 7k-parameter MLP (64-96-10, batch 32) trained with Adam; every 1,000 steps it prints
 * RSS, the host ArrayBuffer memory, the live device-buffer count and steps/s. On GL the live count is textures
 * not yet freed (finalizers free unreleased ones when the event loop turns: `settled` is the count after the
 * loop once it did); on host backends it counts buffers not released explicitly — the garbage collector
 * frees the others without telling, which the RSS and ArrayBuffer columns show.
 *   node dist/bench/soak.js [--steps 10000] [--devices cpu,webasm] [--loops plain,tidy,async]
 */
import { writeFileSync } from 'fs';
import { Command } from 'commander';
import { nn, F, optim, randn, tensor, tidy, manualSeed, deviceReport, Tensor, DeviceName } from '../src';
import { backendFor } from '../src/backend/devices';

type Loop = 'plain' | 'tidy' | 'async';

const opts = new Command()
  .option('--steps <n>', 'steps per run', (v) => parseInt(v, 10), 10000)
  .option('--every <n>', 'report interval', (v) => parseInt(v, 10), 1000)
  .option('--devices <list>', 'devices (default: every available one)')
  .option('--loops <list>', 'loops', 'plain,tidy,async')
  .option('--json <file>', 'also write the rows as JSON')
  .parse()
  .opts();

const MiB = (b: number) => (b / 2 ** 20).toFixed(0);

async function run(device: DeviceName, loop: Loop, compiled: boolean): Promise<Record<string, number | string>[]> {
  manualSeed(0);
  const net = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 10)).to(device);
  const model = compiled ? nn.compile(net) : net;
  const opt = optim.Adam(net.parameters(), { lr: 1e-3 });
  const x = randn([32, 64], { device });
  const y = tensor(
    Array.from({ length: 32 }, (_, i) => i % 10),
    { device },
  );
  const stats = backendFor(device).stats;
  const step = (): Tensor => {
    opt.zeroGrad();
    const loss = F.crossEntropy(model(x) as Tensor, y);
    loss.backward();
    opt.step();
    return loss;
  };
  const rows: Record<string, number | string>[] = [];
  let t0 = performance.now();
  for (let i = 1; i <= opts.steps; i++) {
    if (loop === 'plain') step();
    else if (loop === 'tidy') tidy(() => step());
    else await step().data();
    if (i % opts.every === 0) {
      const m = process.memoryUsage();
      const row = {
        device,
        loop,
        compiled: compiled ? 'yes' : 'no',
        step: i,
        rssMiB: +MiB(m.rss),
        arrayBuffersMiB: +MiB(m.arrayBuffers),
        liveBuffers: stats.live,
        stepsPerSec: Math.round(opts.every / ((performance.now() - t0) / 1000)),
      };
      rows.push(row);
      console.log(Object.values(row).join('\t'));
      t0 = performance.now();
    }
  }
  for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
  console.log(`  settled: ${stats.live} live buffers`);
  rows[rows.length - 1].settledLive = stats.live;
  return rows;
}

async function main(): Promise<void> {
  const devices = (opts.devices?.split(',') ??
    deviceReport()
      .filter((d) => d.ok)
      .map((d) => d.device)) as DeviceName[];
  console.log(`node ${process.version}; devices ${devices.join(', ')}; ${opts.steps} steps per run`);
  console.log(['device', 'loop', 'compiled', 'step', 'rssMiB', 'arrayBuffersMiB', 'liveBuffers', 'steps/s'].join('\t'));
  const all: Record<string, number | string>[] = [];
  for (const device of devices)
    for (const loop of opts.loops.split(',') as Loop[]) for (const compiled of [false, true]) all.push(...(await run(device, loop, compiled)));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(all, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
