/**
 * `npm run bench:first-step`: how long a fresh process takes to its first training step, tsnn against
 * TensorFlow.js (wasm backend). Every measurement is its own `node` process (nothing compiled, nothing
 * tiered up), on the default device ('auto'), at the default thread count unless `--threads` says otherwise.
 *
 * The step: MLP 784-256-10 (Linear, ReLU, Linear), batch 256, cross-entropy, backward, SGD update, loss
 * read back (bench/run.ts's mlp_train_b256). Reported per process: `step` (the first step alone, from its
 * first op to the loss on the host), `total` (from the process's start to the same point: loading the
 * library, its wasm, building the model), and, for tsnn, how many kernel modules were generated, taken
 * from memory or from the disk cache (src/backend/wasm-artefacts.ts).
 *
 * Rows: tsnn with a cold kernel cache (an empty directory), tsnn with that directory warm (the process
 * before filled it), tsnn with the disk cache off, TF.js-wasm; `--before DIR` adds a build of an older
 * tsnn (DIR/dist/src) for a before/after. Rounds are interleaved (round k runs every row once), so all rows
 * see the same machine load; medians are reported, with the load average.
 *
 *   node dist/bench/first-step.js [--rounds 7] [--threads N] [--before /path/to/old/checkout]
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface ChildResult {
  stepMs: number;
  /** CPU time (user + system, all threads of the process) of the step: less sensitive to a busy machine */
  stepCpuMs: number;
  totalMs: number;
  loss: number;
  generated?: number;
  memoryHits?: number;
  diskHits?: number;
  kernelsCompiled?: number;
  splitRuns?: number;
}

// ---- children ---------------------------------------------------------------------------------------
function tsnnChild(lib: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tsnn = require(lib);
  const { nn, F, tidy } = tsnn;
  tsnn.manualSeed(0);
  const net = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10));
  const x = tsnn.rand([256, 784]);
  const y = tsnn.tensor(Array.from({ length: 256 }, (_, i) => i % 10));
  const opt = new tsnn.optim.SGD(net.parameters(), { lr: 0.01 });
  const stopProfile = profileStep();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const loss: number = tidy(() => {
    opt.zeroGrad();
    const l = F.crossEntropy(net(x), y);
    l.backward();
    opt.step();
    return l.item();
  });
  const t1 = performance.now();
  const cpu = process.cpuUsage(c0);
  stopProfile();
  let counters: Partial<ChildResult> = {};
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { artefactStats } = require(path.join(lib, 'backend/wasm-artefacts'));
    counters = { ...artefactStats };
  } catch {
    // an older build has no artefact cache
  }
  const b = tsnn.backendFor(tsnn.getDefaultDevice());
  report({
    stepMs: t1 - t0,
    stepCpuMs: (cpu.user + cpu.system) / 1000,
    totalMs: t1,
    loss,
    ...counters,
    kernelsCompiled: b.stats.kernelsCompiled,
    splitRuns: b.threadStats?.splitRuns,
  });
}

async function tfjsChild(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  /* eslint-enable @typescript-eslint/no-require-imports */
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
  if (!(await tf.setBackend('wasm'))) throw new Error('TF.js wasm backend did not initialise');
  await tf.ready();
  const W1 = tf.variable(tf.randomUniform([784, 256], -0.035, 0.035));
  const b1 = tf.variable(tf.zeros([256]));
  const W2 = tf.variable(tf.randomUniform([256, 10], -0.06, 0.06));
  const b2 = tf.variable(tf.zeros([10]));
  const x = tf.randomUniform([256, 784]);
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 256 }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const opt = tf.train.sgd(0.01);
  const fwd = (v: any) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(v, W1), b1)), W2), b2);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const loss: number = tf.tidy(() => opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, fwd(x)), true).dataSync()[0]);
  const t1 = performance.now();
  const cpu = process.cpuUsage(c0);
  report({ stepMs: t1 - t0, stepCpuMs: (cpu.user + cpu.system) / 1000, totalMs: t1, loss });
}

/**
 * FIRST_STEP_PROFILE=file.cpuprofile: a V8 CPU profile of the first step alone (the inspector's profiler,
 * started right before it; open in Chrome DevTools). Returns the function that stops it and writes the file.
 */
function profileStep(): () => void {
  const file = process.env.FIRST_STEP_PROFILE;
  if (!file) return () => undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const inspector = require('inspector');
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 100 });
  session.post('Profiler.start');
  return () => session.post('Profiler.stop', (err: unknown, r: { profile: unknown }) => !err && fs.writeFileSync(file, JSON.stringify(r.profile)));
}

function report(r: ChildResult): void {
  process.stdout.write(`FIRST-STEP ${JSON.stringify(r)}\n`);
}

// ---- parent -----------------------------------------------------------------------------------------
interface Row {
  name: string;
  args: string[];
  env: Record<string, string>;
  /** run before each round's measurement of this row (cold: an empty cache directory) */
  prepare?: () => void;
}

function runChild(row: Row): ChildResult {
  const r = spawnSync(process.execPath, [__filename, ...row.args], { env: { ...process.env, ...row.env }, encoding: 'utf8', timeout: 300_000 });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('FIRST-STEP '));
  if (r.status !== 0 || !line) throw new Error(`${row.name}: child failed (status ${r.status})\n${r.stderr}`);
  return JSON.parse(line.slice('FIRST-STEP '.length));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function parent(argv: string[]): void {
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const rounds = Number(opt('--rounds') ?? 7);
  const threads = opt('--threads');
  const before = opt('--before');
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-first-step-'));
  const base: Record<string, string> = threads ? { TSNN_THREADS: threads } : {};
  const lib = path.join(__dirname, '../src');
  const rows: Row[] = [
    {
      name: 'tsnn, cold kernel cache',
      args: ['--child', 'tsnn', lib],
      env: { ...base, TSNN_KERNEL_CACHE_DIR: cacheDir },
      prepare: () => {
        fs.rmSync(cacheDir, { recursive: true, force: true });
        fs.mkdirSync(cacheDir, { mode: 0o700 });
      },
    },
    { name: 'tsnn, warm kernel cache', args: ['--child', 'tsnn', lib], env: { ...base, TSNN_KERNEL_CACHE_DIR: cacheDir } },
    { name: 'tsnn, disk cache off', args: ['--child', 'tsnn', lib], env: { ...base, TSNN_KERNEL_CACHE_DIR: 'off' } },
  ];
  if (before) rows.push({ name: `tsnn before (${before})`, args: ['--child', 'tsnn', path.resolve(before, 'dist/src')], env: base });
  rows.push({ name: 'TF.js-wasm', args: ['--child', 'tfjs'], env: {} });
  const results = new Map<string, ChildResult[]>(rows.map((r) => [r.name, []]));
  const load0 = os.loadavg();
  for (let k = 0; k < rounds; k++) {
    for (const row of rows) {
      row.prepare?.();
      results.get(row.name)!.push(runChild(row));
    }
    process.stderr.write(`round ${k + 1}/${rounds}\n`);
  }
  const load1 = os.loadavg();
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const fmt = (l: number[]) => l.map((v) => v.toFixed(1)).join(' / ');
  console.log(
    `first training step of a fresh process: MLP 784-256-10, batch 256, SGD; ${os.cpus().length} cores, Node ${process.version}, ` +
      `threads ${threads ?? 'default'}; medians of ${rounds} processes per row; load ${fmt(load0)} at the start, ${fmt(load1)} at the end`,
  );
  const tf = median(results.get('TF.js-wasm')!.map((r) => r.stepMs));
  const tfCpu = median(results.get('TF.js-wasm')!.map((r) => r.stepCpuMs));
  console.log(
    `${'row'.padEnd(34)} ${'step ms'.padStart(8)} ${'vs TF.js'.padStart(8)} ${'step CPU ms'.padStart(11)} ${'vs TF.js'.padStart(8)} ${'total ms'.padStart(9)}  kernels: generated / memory / disk`,
  );
  for (const row of rows) {
    const rs = results.get(row.name)!;
    const step = median(rs.map((r) => r.stepMs));
    const cpu = median(rs.map((r) => r.stepCpuMs));
    const total = median(rs.map((r) => r.totalMs));
    const c = rs[rs.length - 1];
    const kernels =
      c.generated === undefined
        ? c.kernelsCompiled === undefined
          ? ''
          : `${c.kernelsCompiled} compiled`
        : `${c.generated} / ${c.memoryHits} / ${c.diskHits}`;
    console.log(
      `${row.name.padEnd(34)} ${step.toFixed(1).padStart(8)} ${(step / tf).toFixed(2).padStart(7)}x ${cpu.toFixed(1).padStart(11)} ${(cpu / tfCpu).toFixed(2).padStart(7)}x ${total.toFixed(1).padStart(9)}  ${kernels}`,
    );
  }
}

if (process.argv[2] === '--child') {
  if (process.argv[3] === 'tfjs') {
    tfjsChild().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  } else tsnnChild(process.argv[4]);
} else parent(process.argv.slice(2));
