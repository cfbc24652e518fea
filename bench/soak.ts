/**
 * `npm run bench:soak`: memory over a long training run, the way users write the loop.
 *
 * Loops: (a) plain — synchronous, no tidy, no dispose, no await (PyTorch style); (b) tidy — each step
 * inside tidy(); (c) async — `await loss.data()` each step. Each eager and through nn.compile, on every
 * device here. A 7k-parameter MLP (64-96-10, batch 32) trained with Adam; every 1,000 steps it prints
 * RSS (as the loop left it), then, after a full garbage collection, the V8 heap in use, the host
 * ArrayBuffer memory and the device buffers still reachable (`v8.queryObjects`: what a leak would hold), and
 * on GL the textures not yet deleted nor spilled (`stats.live`: finalizers delete unreleased ones only when
 * the event loop turns — `settled` is the count once it did), the MiB of textures resident and the
 * textures spilled to host memory per step over the interval (gl-residency.ts: past glTextureBudgetMb), and
 * steps/s over the last 1,000 steps (the collection is outside the timed part).
 *   node dist/bench/soak.js [--steps 10000] [--devices cpu,webasm] [--loops plain,tidy,async] [--compiled no,yes] [--budget MiB]
 */
import { writeFileSync } from 'fs';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Command } from 'commander';
import { nn, F, optim, randn, tensor, tidy, manualSeed, deviceReport, setBackendOptions, Tensor, DeviceName } from '../src';
import { backendFor } from '../src/backend/devices';
import { DeviceBuffer } from '../src/backend/gpujs-backend';

v8.setFlagsFromString('--expose-gc');
const gc: () => void = vm.runInNewContext('gc');
const queryObjects = (v8 as unknown as { queryObjects?: (ctor: unknown, o: { format: 'count' }) => number }).queryObjects;
/** Device buffers (of any device: one runs at a time) still reachable after a full collection; Node >= 20.13. */
const reachableBuffers = (): number => (queryObjects ? queryObjects(DeviceBuffer, { format: 'count' }) : NaN);

type Loop = 'plain' | 'tidy' | 'async';

const opts = new Command()
  .option('--steps <n>', 'steps per run', (v) => parseInt(v, 10), 10000)
  .option('--every <n>', 'report interval', (v) => parseInt(v, 10), 1000)
  .option('--devices <list>', 'devices (default: every available one)')
  .option('--loops <list>', 'loops', 'plain,tidy,async')
  .option('--compiled <list>', 'eager (no) and/or compiled (yes)', 'no,yes')
  .option('--budget <mb>', 'GL texture budget in MiB (glTextureBudgetMb; default: the default, 256)', parseFloat)
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
  let spills0 = stats.spills;
  let t0 = performance.now();
  for (let i = 1; i <= opts.steps; i++) {
    if (loop === 'plain') step();
    else if (loop === 'tidy') tidy(() => step());
    else await step().data();
    if (i % opts.every === 0) {
      const stepsPerSec = Math.round(opts.every / ((performance.now() - t0) / 1000));
      const rss = process.memoryUsage().rss;
      const live = reachableBuffers();
      gc();
      const m = process.memoryUsage();
      const row = {
        device,
        loop,
        compiled: compiled ? 'yes' : 'no',
        step: i,
        rssMiB: +MiB(rss),
        heapMiB: +MiB(m.heapUsed),
        arrayBuffersMiB: +MiB(m.arrayBuffers),
        liveBuffers: live,
        textures: device === 'gpu' ? stats.live : '-',
        residentMiB: device === 'gpu' ? +MiB(stats.residentBytes) : '-',
        spillsPerStep: device === 'gpu' ? +((stats.spills - spills0) / opts.every).toFixed(1) : '-',
        stepsPerSec,
      };
      spills0 = stats.spills;
      rows.push(row);
      console.log(Object.values(row).join('\t'));
      t0 = performance.now();
    }
  }
  for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
  if (device === 'gpu') console.log(`  settled: ${stats.live} textures`);
  if (device === 'gpu') rows[rows.length - 1].settledTextures = stats.live;
  return rows;
}

async function main(): Promise<void> {
  const devices = (opts.devices?.split(',') ??
    deviceReport()
      .filter((d) => d.ok)
      .map((d) => d.device)) as DeviceName[];
  if (opts.budget !== undefined) setBackendOptions({ glTextureBudgetMb: opts.budget });
  console.log(`node ${process.version}; devices ${devices.join(', ')}; ${opts.steps} steps per run; GL texture budget ${opts.budget ?? 'default'}`);
  console.log(
    [
      'device',
      'loop',
      'compiled',
      'step',
      'rssMiB',
      'heapMiB',
      'arrayBuffersMiB',
      'liveBuffers',
      'textures',
      'residentMiB',
      'spills/step',
      'steps/s',
    ].join('\t'),
  );
  const all: Record<string, number | string>[] = [];
  for (const device of devices)
    for (const loop of opts.loops.split(',') as Loop[])
      for (const compiled of opts.compiled.split(',')) all.push(...(await run(device, loop, compiled === 'yes')));
  if (opts.json) writeFileSync(opts.json, JSON.stringify(all, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
