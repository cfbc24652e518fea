/**
 * `npm run bench`: tsnn against TensorFlow.js (wasm backend) and PyTorch (CPU, as a subprocess), in one run.
 *
 * Cases: matmul 512x512, MLP 784-256-10 forward at batch 256 and at batch 1, one SGD training step at
 * batch 256 (forward, cross-entropy, backward, update), and a 3x3 convolution 16 -> 32 channels on
 * [128, 16, 14, 14] (forward; forward + backward), where tsnn runs both conv2d variants (direct
 * kernels and im2col + tiled matmul, forced through TSNN_CONV). tsnn runs on every device that works here,
 * eagerly and through `nn.compile`; the best device ('auto') is marked. Every number is the median of
 * several timed rounds after warm-up rounds; each round ends with a read-back, so asynchronous work
 * is inside the timing. Results go to stdout as a table and to bench/results.json.
 */
import { Command } from 'commander';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tsnn from '../src';
import { Tensor, nn, tidy, noGrad } from '../src';
import type { DeviceName } from '../src';
import { backendFor } from '../src/backend/devices';

type CaseId = 'matmul' | 'mlp_fwd_b256' | 'mlp_fwd_b1' | 'mlp_train_b256' | 'conv_fwd' | 'conv_train';
const CASES: { id: CaseId; title: string }[] = [
  { id: 'matmul', title: 'matmul 512x512' },
  { id: 'mlp_fwd_b256', title: 'MLP 784-256-10 forward, batch 256' },
  { id: 'mlp_fwd_b1', title: 'MLP 784-256-10 forward, batch 1' },
  { id: 'mlp_train_b256', title: 'MLP SGD train step, batch 256' },
  { id: 'conv_fwd', title: 'conv2d 3x3 [128,16,14,14] -> 32, pad 1, forward' },
  { id: 'conv_train', title: 'conv2d 3x3 [128,16,14,14] -> 32, pad 1, forward + backward' },
];

/** The convolution cases: x [N, C, H, W] * w [O, C, K, K], padding 1 (TF.js gets the same in NHWC / HWIO). */
const CONV = { N: 128, C: 16, H: 14, W: 14, O: 32, K: 3 };

interface Result {
  case: CaseId;
  impl: string;
  device: string;
  mode: 'eager' | 'compiled' | '-';
  /** worker threads per kernel (tsnn on cpu/webasm) */
  threads?: number;
  /** tsnn conv2d variant (conv cases) */
  variant?: string;
  ms: number | null;
  rounds: number;
  note?: string;
}

interface Opts {
  warmup: number;
  rounds: number;
  budget: number;
  devices?: string;
  torch: boolean;
  tfjs: boolean;
  cases?: string;
  out: string;
}

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** One thing to time: a label and a synchronous round (each round ends with a read-back). */
interface Runner {
  impl: string;
  device: string;
  mode: Result['mode'];
  threads?: number;
  variant?: string;
  fn: () => void;
  /** set while this runner's rounds run (e.g. TSNN_THREADS) */
  env?: Record<string, string>;
  failed?: string;
}

function withEnv<T>(env: Record<string, string> | undefined, f: () => T): T {
  if (!env) return f();
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  try {
    return f();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * Times every runner of a case *interleaved*: warm-up rounds for each, then timed rounds where each
 * round runs every runner once (starting at a rotating position), so all of them see the same machine
 * load; the median per runner is reported. The round count shrinks for slow cases to fit `budget`.
 */
function timeCase(id: CaseId, runners: Runner[], o: Opts, out: Result[]): void {
  const live = runners.filter((r) => !r.failed);
  const first = new Map<Runner, number>();
  for (const r of live) {
    try {
      const t0 = performance.now();
      withEnv(r.env, r.fn);
      first.set(r, performance.now() - t0);
      for (let i = 1; i < o.warmup; i++) withEnv(r.env, r.fn);
    } catch (e) {
      r.failed = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  const ok = live.filter((r) => !r.failed);
  // each runner gets as many rounds as fit its budget (at least 3, at most o.rounds); a round runs every
  // runner that still needs samples, starting at a rotating position
  const target = new Map<Runner, number>(ok.map((r) => [r, Math.max(3, Math.min(o.rounds, Math.floor(o.budget / Math.max(first.get(r) ?? 1, 1e-3))))]));
  const times = new Map<Runner, number[]>(ok.map((r) => [r, []]));
  for (let k = 0; ok.some((r) => times.get(r)!.length < target.get(r)!); k++) {
    for (let j = 0; j < ok.length; j++) {
      const r = ok[(j + k) % ok.length];
      if (times.get(r)!.length >= target.get(r)!) continue;
      withEnv(r.env, () => {
        const t = performance.now();
        r.fn();
        times.get(r)!.push(performance.now() - t);
      });
    }
  }
  for (const r of runners) {
    const ts = times.get(r);
    if (!ts) {
      out.push({ case: id, impl: r.impl, device: r.device, mode: r.mode, threads: r.threads, variant: r.variant, ms: null, rounds: 0, note: r.failed ?? 'n/a' });
      continue;
    }
    ts.sort((a, b) => a - b);
    const ms = ts[ts.length >> 1];
    out.push({ case: id, impl: r.impl, device: r.device, mode: r.mode, threads: r.threads, variant: r.variant, ms, rounds: ts.length });
    console.error(`  ${id.padEnd(15)} ${`${r.impl} ${r.device}${r.threads ? ` x${r.threads}` : ''} ${r.variant ?? ''} ${r.mode}`.padEnd(40)} ${ms.toFixed(3)} ms (median of ${ts.length}, min ${ts[0].toFixed(3)})`);
  }
}

// ---- tsnn -------------------------------------------------------------------------------------------
function makeMlp(device: DeviceName): nn.Module {
  tsnn.manualSeed(0);
  return new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10)).to(device);
}

function crossEntropy(logits: Tensor, target: Tensor): Tensor {
  const F = tsnn.F as any;
  if (typeof F.crossEntropy === 'function') return F.crossEntropy(logits, target);
  // fallback while the losses are not exported: mean NLL of logSoftmax
  const lp = logits.logSoftmax(-1);
  return lp.gather(1, target.reshape([-1, 1])).mean().neg();
}

function sgdFor(params: Tensor[], lr: number): { step(): void; zeroGrad(): void } {
  const optim = (tsnn as any).optim;
  if (optim?.SGD) return new optim.SGD(params, { lr });
  return {
    step: () => noGrad(() => params.forEach((p) => p.grad && p.sub_(p.grad.mul(lr)))),
    zeroGrad: () => params.forEach((p) => (p.grad = null)),
  };
}

function compileFn(): ((m: nn.Module) => any) | null {
  const c = (nn as any).compile;
  return typeof c === 'function' ? c : null;
}

/** The tsnn runners of one case on one device (eager and compiled; and single-threaded where threads apply). */
function tsnnRunners(id: CaseId, device: DeviceName, threadings: number[]): Runner[] {
  const out: Runner[] = [];
  const compile = compileFn();
  for (const threads of threadings) {
    const env = { TSNN_THREADS: String(threads) };
    const base = { impl: 'tsnn', device, threads: threadings.length > 1 || threads > 1 ? threads : undefined, env };
    if (id === 'conv_fwd' || id === 'conv_train') {
      const { N, C, H, W, O, K } = CONV;
      tsnn.manualSeed(2);
      const x = tsnn.rand([N, C, H, W], { device, requiresGrad: true });
      const w = tsnn.rand([O, C, K, K], { device, requiresGrad: true });
      const gy = tsnn.rand([N, O, H, W], { device });
      for (const variant of ['direct', 'im2col']) {
        const r = { ...base, variant, env: { ...env, TSNN_CONV: variant }, mode: 'eager' as const };
        if (id === 'conv_fwd') out.push({ ...r, fn: () => tidy(() => noGrad(() => void tsnn.F.conv2d(x, w, null, { padding: 1 }).dataSync())) });
        else {
          out.push({
            ...r,
            fn: () =>
              tidy(() => {
                tsnn.F.conv2d(x, w, null, { padding: 1 }).backward(gy);
                void x.grad!.dataSync();
                void w.grad!.dataSync();
                x.grad = null;
                w.grad = null;
              }),
          });
        }
      }
      continue;
    }
    if (id === 'matmul') {
      tsnn.manualSeed(1);
      const a = tsnn.rand([512, 512], { device });
      const b = tsnn.rand([512, 512], { device });
      out.push({ ...base, mode: 'eager', fn: () => tidy(() => void a.matmul(b).dataSync()) });
      continue;
    }
    const x = tsnn.rand([id === 'mlp_fwd_b1' ? 1 : 256, 784], { device });
    const y = tsnn.tensor(Array.from({ length: 256 }, (_, i) => i % 10), { device });
    for (const mode of ['eager', 'compiled'] as const) {
      if (mode === 'compiled' && !compile) {
        out.push({ ...base, mode, fn: () => undefined, failed: 'nn.compile not available' });
        continue;
      }
      const net = makeMlp(device);
      const model = mode === 'compiled' ? compile!(net) : net;
      if (id === 'mlp_train_b256') {
        const opt = sgdFor(net.parameters(), 0.01);
        out.push({
          ...base,
          mode,
          fn: () =>
            tidy(() => {
              opt.zeroGrad();
              const loss = crossEntropy(model(x), y);
              loss.backward();
              opt.step();
              void loss.item();
            }),
        });
      } else {
        out.push({ ...base, mode, fn: () => tidy(() => noGrad(() => void model(x).dataSync())) });
      }
    }
  }
  return out;
}

// ---- TensorFlow.js ------------------------------------------------------------------------------------
async function tfjsRunners(cases: CaseId[]): Promise<{ note: string; runners: Map<CaseId, Runner> }> {
  const runners = new Map<CaseId, Runner>();
  let tf: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    tf = require('@tensorflow/tfjs');
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const wasm = require('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep);
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
    await tf.ready();
  } catch (e) {
    const why = `TF.js wasm unavailable: ${(e as Error).message}`;
    for (const c of cases) runners.set(c, { impl: 'tfjs-wasm', device: 'wasm', mode: '-', fn: () => undefined, failed: why });
    return { note: why, runners };
  }
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  const add = (c: CaseId, fn: () => void) => runners.set(c, { impl: 'tfjs-wasm', device: 'wasm', mode: '-', fn });
  const a = tf.randomUniform([512, 512]);
  const b = tf.randomUniform([512, 512]);
  add('matmul', () => tf.tidy(() => void tf.matMul(a, b).dataSync()));
  const W1 = tf.variable(tf.randomUniform([784, 256], -0.035, 0.035));
  const b1 = tf.variable(tf.zeros([256]));
  const W2 = tf.variable(tf.randomUniform([256, 10], -0.06, 0.06));
  const b2 = tf.variable(tf.zeros([10]));
  const fwd = (x: any) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2);
  const x256 = tf.randomUniform([256, 784]);
  const x1 = tf.randomUniform([1, 784]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 256 }, (_, i) => i % 10), 'int32'), 10);
  add('mlp_fwd_b256', () => tf.tidy(() => void fwd(x256).dataSync()));
  add('mlp_fwd_b1', () => tf.tidy(() => void fwd(x1).dataSync()));
  const opt = tf.train.sgd(0.01);
  add('mlp_train_b256', () =>
    tf.tidy(() => {
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, fwd(x256)), true);
      void loss.dataSync();
    }),
  );
  // TF.js convolves NHWC input with an HWIO filter; 'same' is padding 1 for a stride-1 3x3
  const { N, C, H, W, O, K } = CONV;
  const cx = tf.randomUniform([N, H, W, C]);
  const cw = tf.randomUniform([K, K, C, O]);
  const cdy = tf.randomUniform([N, H, W, O]);
  add('conv_fwd', () => tf.tidy(() => void tf.conv2d(cx, cw, 1, 'same').dataSync()));
  const convGrads = tf.grads((a: any, b: any) => tf.conv2d(a, b, 1, 'same'));
  add('conv_train', () =>
    tf.tidy(() => {
      const [dx, dw] = convGrads([cx, cw], cdy);
      void dx.dataSync();
      void dw.dataSync();
    }),
  );
  return { note: `TF.js ${tf.version_core} wasm backend (SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'})`, runners };
}

// ---- PyTorch --------------------------------------------------------------------------------------------
function benchTorch(cases: CaseId[], o: Opts, out: Result[]): string {
  const py = '/usr/bin/python3';
  const script = path.join(repoRoot(), 'bench', 'torch_bench.py');
  const fail = (why: string) => {
    for (const c of cases) out.push({ case: c, impl: 'pytorch-cpu', device: 'cpu', mode: '-', ms: null, rounds: 0, note: why });
    return `PyTorch unavailable: ${why}`;
  };
  if (!fs.existsSync(py)) return fail(`${py} not found`);
  const r = spawnSync(py, [script, String(o.warmup), String(o.rounds)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) return fail((r.stderr || r.error?.message || 'failed').trim().split('\n').pop()!);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  for (const c of cases) {
    const ms = res.results[c];
    out.push({ case: c, impl: 'pytorch-cpu', device: 'cpu', mode: '-', ms: ms ?? null, rounds: o.rounds });
    console.error(`  ${c.padEnd(15)} pytorch ${ms?.toFixed(3)} ms`);
  }
  return `PyTorch ${res.torch} CPU (${res.threads} thread${res.threads === 1 ? '' : 's'}), /usr/bin/python3 subprocess, timed apart from the rest`;
}

// ---- report ---------------------------------------------------------------------------------------------------
function fmtMs(ms: number | null): string {
  if (ms === null) return 'n/a';
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}
function ratio(a: number | null, b: number | null | undefined): string {
  return a === null || b === null || b === undefined ? 'n/a' : `${(a / b).toFixed(2)}x`;
}

function table(results: Result[], best: DeviceName): string {
  const lines: string[] = [];
  const header = ['case', 'implementation', 'mode', 'ms', 'vs TF.js-wasm', 'vs PyTorch'];
  const rows: string[][] = [];
  for (const { id, title } of CASES) {
    const rs = results.filter((r) => r.case === id);
    if (!rs.length) continue;
    const tf = rs.find((r) => r.impl === 'tfjs-wasm')?.ms;
    const pt = rs.find((r) => r.impl === 'pytorch-cpu')?.ms;
    rs.forEach((r, k) => {
      const name = r.impl === 'tsnn' ? `tsnn ${r.device}${r.device === best ? ' (auto)' : ''}${r.threads ? `, ${r.threads} thread${r.threads > 1 ? 's' : ''}` : ''}${r.variant ? `, ${r.variant}` : ''}` : r.impl;
      rows.push([k === 0 ? title : '', name, r.mode, r.ms === null ? (r.note ?? 'n/a') : fmtMs(r.ms), r.impl === 'tsnn' ? ratio(r.ms, tf) : '', r.impl === 'tsnn' ? ratio(r.ms, pt) : '']);
    });
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 3 || i >= 4 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  lines.push(fmt(header), widths.map((w) => '-'.repeat(w)).join('  '));
  let last = '';
  for (const r of rows) {
    if (r[0] && last) lines.push('');
    if (r[0]) last = r[0];
    lines.push(fmt(r));
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const cmd = new Command()
    .name('bench')
    .description('tsnn vs TensorFlow.js (wasm) vs PyTorch (CPU): matmul, MLP forward, MLP train step, conv2d')
    .option('--warmup <n>', 'warm-up rounds per case (V8 tiers wasm up to optimised code after a few calls; worker threads take ~20)', (v) => parseInt(v, 10), 20)
    .option('--rounds <n>', 'timed rounds per case and implementation (median reported)', (v) => parseInt(v, 10), 15)
    .option('--budget <ms>', 'time budget per implementation and case; slow ones run fewer rounds (at least 3)', (v) => parseFloat(v), 3000)
    .option('--devices <list>', 'tsnn devices to run (comma separated; default: every available one)')
    .option('--cases <list>', `cases to run (comma separated: ${CASES.map((c) => c.id).join(', ')})`)
    .option('--no-torch', 'skip PyTorch')
    .option('--no-tfjs', 'skip TensorFlow.js')
    .option('--out <file>', 'where to write the JSON results', path.join(repoRoot(), 'bench', 'results.json'));
  cmd.parse(process.argv);
  const o = cmd.opts<Opts>();
  const cases = (o.cases ? o.cases.split(',') : CASES.map((c) => c.id)) as CaseId[];
  const report = tsnn.deviceReport();
  const available = report.filter((d) => d.ok).map((d) => d.device);
  const devices = (o.devices ? o.devices.split(',').filter((d) => available.includes(d as DeviceName)) : available) as DeviceName[];
  const best = tsnn.getDefaultDevice();
  console.error(`tsnn bench on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores), node ${process.version}`);
  for (const d of report) console.error(`  ${d.device.padEnd(7)} ${d.ok ? 'available' : 'unavailable'}${d.renderer ? ` (${d.renderer})` : ''}${d.ok ? '' : `: ${d.why}`}`);
  console.error(`  auto = ${best}`);

  const results: Result[] = [];
  const notes: string[] = [];
  const threads = backendFor(best).threads;
  let tf: Awaited<ReturnType<typeof tfjsRunners>> | null = null;
  if (o.tfjs) {
    tf = await tfjsRunners(cases);
    notes.push(tf.note);
  }
  // the best device first (and single-threaded too where it splits kernels across threads)
  const order = [best, ...devices.filter((d) => d !== best)].filter((d) => devices.includes(d));
  for (const { id } of CASES.filter((c) => cases.includes(c.id))) {
    console.error(`${id}:`);
    const runners: Runner[] = [];
    for (const d of order) {
      const th = d === best && backendFor(d).threads > 1 ? [backendFor(d).threads, 1] : [backendFor(d).threads];
      runners.push(...tsnnRunners(id, d, th));
    }
    if (tf) runners.push(tf.runners.get(id)!);
    timeCase(id, runners, o, results);
  }
  if (o.torch) {
    console.error('PyTorch:');
    notes.push(benchTorch(cases, o, results));
  }
  notes.push(`tsnn ${best}: kernels above ~2M multiply-adds may split across ${threads} thread(s) (TSNN_THREADS), per kernel only while that is faster than running it whole (src/backend/split-policy.ts); rows marked "1 thread" turn splitting off`);
  if (cases.some((c) => c.startsWith('conv'))) notes.push('conv cases: tsnn rows name the conv2d variant (forced with TSNN_CONV); without it conv2d picks im2col on webasm for this shape and the direct kernels on cpu and gpu');
  const text = table(results, best);
  console.log(`\n${text}\n`);
  for (const n of notes) console.log(`- ${n}`);
  console.log(`- tsnn auto device: ${best}; ratios are tsnn ms / reference ms (below 1x: tsnn is faster)`);
  console.log(`- medians; tsnn and TF.js rounds interleaved within a case (they see the same machine load), load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const doc = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.arch()}`, loadavg: os.loadavg() },
    protocol: { warmup: o.warmup, rounds: o.rounds, budgetMs: o.budget, statistic: 'median', interleaved: 'tsnn and TF.js rounds alternate within a case; PyTorch runs apart (subprocess)' },
    devices: report,
    auto: best,
    notes,
    results,
  };
  fs.writeFileSync(o.out, JSON.stringify(doc, null, 2) + '\n');
  console.log(`- results written to ${path.relative(process.cwd(), o.out)}`);
}

function hasGl(): boolean {
  try {
    const dir = path.dirname(require.resolve('gl/package.json'));
    return fs.existsSync(path.join(dir, 'build/Release/webgl.node'));
  } catch {
    return false;
  }
}

// the 'gpu' device needs a display: re-run under xvfb where gl is installed and none exists (as test/run.js does)
if (!process.env.DISPLAY && !process.env.TSNN_NO_XVFB && hasGl() && spawnSync('sh', ['-c', 'command -v xvfb-run']).status === 0) {
  const r = spawnSync('xvfb-run', ['-a', '-s', '-ac -screen 0 1280x1024x24', process.execPath, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TSNN_NO_XVFB: '1' },
  });
  process.exit(r.status ?? 1);
} else {
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
