/**
 * `npm run bench`: tsnn against TensorFlow.js (wasm backend) and PyTorch (CPU, as a subprocess), in one run.
 *
 * Cases: matmul 512x512, MLP 784-256-10 forward at batch 256 and at batch 1, one SGD training step at
 * batch 256 (forward, cross-entropy, backward, update), a 3x3 convolution 16 -> 32 channels on
 * [128, 16, 14, 14] (forward; forward + backward), where tsnn runs both conv2d variants (direct
 * kernels and im2col + tiled matmul, forced through TSNN_CONV), and torchvision's ResNet-18 in eval mode
 * (batch 2, 64x64). tsnn runs on every device that works here, eagerly and through `nn.compile`; the best
 * device ('auto') is marked, and runs at its thread count and at 1 thread. PyTorch runs at the same thread
 * counts (bench/torch-runner.ts), and the 1-thread pair is the headline comparison (bench/pairs.ts). Every
 * number is the median of several timed rounds after warm-up rounds; each round ends with a read-back, so
 * asynchronous work is inside the timing. Results go to stdout as a table and to bench/results.json
 * (`node dist/bench/update-readme.js` turns that into the README's table).
 */
import { Command } from 'commander';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tsnn from '../src';
import { ResNet18 } from '../samples/resnet/resnet18';
import { runTorch, describeTorch, TorchInfo, TorchRun } from './torch-runner';
import { casePairs, fmtMs, fmtRatio, CasePairs } from './pairs';
import { CASES, CaseId } from './cases';
import { Tensor, nn, tidy, noGrad } from '../src';
import type { DeviceName } from '../src';
import { backendFor } from '../src/backend/devices';
import { wasmPeak } from './wasm-peak';
import { wasmFeatures } from '../src/backend/wasm/features';
import { runBrowserBench } from './browser/run-browser';

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
  /** median of the timed rounds */
  ms: number | null;
  /** fastest timed round (less sensitive to a busy machine than the median; not what the tables use) */
  min?: number;
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
  out?: string;
  quick: boolean;
  /** webasm: also time every form with matmul on the gpu.js kernel (before/after the direct wasm gemm) */
  ablation: boolean;
  torchOpenblasEnv: 'user' | 'inherit';
  browser: boolean;
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
  const roundMs = new Map<Runner, number>();
  for (const r of live) {
    try {
      // the first round compiles kernels / captures the graph; the second says how slow a round is, and slow
      // implementations (a ResNet on the JS backend) warm up within twice the budget (2 rounds at least)
      withEnv(r.env, r.fn);
      const t = performance.now();
      withEnv(r.env, r.fn);
      roundMs.set(r, performance.now() - t);
      const warmup = Math.min(o.warmup, Math.floor((2 * o.budget) / Math.max(roundMs.get(r)!, 1e-3)));
      for (let i = 2; i < warmup; i++) withEnv(r.env, r.fn);
    } catch (e) {
      r.failed = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  const ok = live.filter((r) => !r.failed);
  // each runner gets as many rounds as fit its budget (at least 3, at most o.rounds); a round runs every
  // runner that still needs samples, starting at a rotating position
  const target = new Map<Runner, number>(
    ok.map((r) => [r, Math.max(3, Math.min(o.rounds, Math.floor(o.budget / Math.max(roundMs.get(r) ?? 1, 1e-3))))]),
  );
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
      out.push({
        case: id,
        impl: r.impl,
        device: r.device,
        mode: r.mode,
        threads: r.threads,
        variant: r.variant,
        ms: null,
        rounds: 0,
        note: r.failed ?? 'n/a',
      });
      continue;
    }
    ts.sort((a, b) => a - b);
    const ms = ts[ts.length >> 1];
    out.push({ case: id, impl: r.impl, device: r.device, mode: r.mode, threads: r.threads, variant: r.variant, ms, min: ts[0], rounds: ts.length });
    console.error(
      `  ${id.padEnd(15)} ${`${r.impl} ${r.device}${r.threads ? ` x${r.threads}` : ''} ${r.variant ?? ''} ${r.mode}`.padEnd(40)} ${ms.toFixed(3)} ms (median of ${ts.length}, min ${ts[0].toFixed(3)})`,
    );
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
  return lp
    .gather(1, target.reshape([-1, 1]))
    .mean()
    .neg();
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
  // one ResNet-18 (and its compiled form) per device and batch, shared by the thread counts: 11.7M parameters
  const resnet = new Map<number, { eager: nn.Module; compiled: any; x: Tensor }>();
  for (const threads of threadings) {
    const env = { TSNN_THREADS: String(threads) };
    const base = { impl: 'tsnn', device, threads: threadings.length > 1 || threads > 1 ? threads : undefined, env };
    if (id === 'conv_fwd' || id === 'conv_train') {
      const { N, C, H, W, O, K } = CONV;
      tsnn.manualSeed(2);
      const x = tsnn.rand([N, C, H, W], { device, requiresGrad: true });
      const w = tsnn.rand([O, C, K, K], { device, requiresGrad: true });
      const gy = tsnn.rand([N, O, H, W], { device });
      // implicit: the direct WebAssembly implicit GEMM (webasm's own choice; elsewhere it falls back)
      for (const variant of device === 'webasm' ? ['direct', 'im2col', 'implicit'] : ['direct', 'im2col']) {
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
    if (id === 'resnet18_eval' || id === 'resnet18_eval_b16') {
      const batch = id === 'resnet18_eval' ? 2 : 16;
      let r = resnet.get(batch);
      if (!r) {
        tsnn.manualSeed(3);
        const eager = new ResNet18().to(device);
        eager.eval();
        r = { eager, compiled: compile ? compile(eager) : null, x: tsnn.rand([batch, 3, 64, 64], { device }) };
        resnet.set(batch, r);
      }
      const { eager, compiled, x } = r;
      out.push({ ...base, mode: 'eager', fn: () => tidy(() => noGrad(() => void eager(x).dataSync())) });
      if (compiled) out.push({ ...base, mode: 'compiled', fn: () => tidy(() => noGrad(() => void compiled(x).dataSync())) });
      else out.push({ ...base, mode: 'compiled', fn: () => undefined, failed: 'nn.compile not available' });
      if (device === 'webasm') {
        // before the implicit GEMM: its convolutions on im2col + the wasm matmul (TSNN_WASM_CONV=off)
        const off = { ...base, variant: 'im2col', env: { ...env, TSNN_WASM_CONV: 'off' } };
        out.push({ ...off, mode: 'eager', fn: () => tidy(() => noGrad(() => void eager(x).dataSync())) });
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
    const y = tsnn.tensor(
      Array.from({ length: 256 }, (_, i) => i % 10),
      { device },
    );
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

/** The same runners with TSNN_WASM_MATMUL=gpujs, labelled apart (not a tsnn form the pairs pick from). */
function gpujsMatmulRunners(rs: Runner[]): Runner[] {
  return rs
    .filter((r) => r.variant !== 'direct' && r.variant !== 'implicit')
    .map((r) => ({ ...r, impl: 'tsnn, gpu.js matmul', env: { ...r.env, TSNN_WASM_MATMUL: 'gpujs' } }));
}

// ---- TensorFlow.js ------------------------------------------------------------------------------------
async function tfjsRunners(cases: CaseId[]): Promise<{ note: string; runners: Map<CaseId, Runner> }> {
  const runners = new Map<CaseId, Runner>();
  let tf: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    tf = require('@tensorflow/tfjs');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
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
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 256 }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
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
  runners.set('resnet18_eval', { impl: 'tfjs-wasm', device: 'wasm', mode: '-', fn: () => undefined, failed: 'no TF.js ResNet-18 in this bench' });
  runners.set('resnet18_eval_b16', { impl: 'tfjs-wasm', device: 'wasm', mode: '-', fn: () => undefined, failed: 'no TF.js ResNet-18 in this bench' });
  return { note: `TF.js ${tf.version_core} wasm backend (SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'})`, runners };
}

// ---- PyTorch --------------------------------------------------------------------------------------------
const TORCH_SCRIPT = path.join(repoRoot(), 'bench', 'torch_bench.py');

/** PyTorch's rounds for one case at each thread count, run right after tsnn's rounds for that case. */
function benchTorch(id: CaseId, threadCounts: number[], o: Opts, out: Result[], infos: Map<number, TorchInfo>): void {
  for (const t of threadCounts) {
    const run = runTorch(TORCH_SCRIPT, {
      threads: t,
      cases: [id],
      warmup: o.warmup,
      rounds: o.rounds,
      budget: o.budget,
      openblasEnv: o.torchOpenblasEnv,
    });
    if (run.error) throw new TorchRefused(run);
    infos.set(t, run.info);
    const r = run.results![id];
    out.push({ case: id, impl: 'pytorch-cpu', device: 'cpu', mode: '-', threads: t, ms: r.ms, min: r.min, rounds: r.rounds });
    console.error(`  ${id.padEnd(15)} ${`pytorch cpu x${t}`.padEnd(40)} ${r.ms.toFixed(3)} ms (median of ${r.rounds}, min ${r.min.toFixed(3)})`);
  }
}

class TorchRefused extends Error {
  constructor(readonly run: TorchRun) {
    super(run.error);
  }
}

/** Says loudly, on stdout and stderr, that there is no PyTorch comparison and why. */
function shoutRefusal(why: string): void {
  const bar = '!'.repeat(100);
  const text = [
    bar,
    `PyTorch comparison REFUSED: ${why}`,
    'No tsnn / PyTorch ratio is reported. Give PyTorch an optimised BLAS, or run with --no-torch to time tsnn and TF.js only.',
    bar,
  ].join('\n');
  console.error(`\n${text}\n`);
  console.log(`\n${text}\n`);
}

// ---- report ---------------------------------------------------------------------------------------------------
function table(results: Result[], best: DeviceName): string {
  const header = ['case', 'implementation', 'mode', 'ms', 'vs TF.js-wasm', 'vs PyTorch (same threads)'];
  const rows: string[][] = [];
  const missing: string[] = [];
  for (const { id, title } of CASES) {
    const rs = results.filter((r) => r.case === id);
    if (!rs.length) continue;
    const tf = rs.find((r) => r.impl === 'tfjs-wasm')?.ms ?? null;
    const pt = (threads: number) => rs.find((r) => r.impl === 'pytorch-cpu' && r.threads === threads)?.ms ?? null;
    const nThreads = (n?: number) => (n ? `, ${n} thread${n > 1 ? 's' : ''}` : '');
    rs.forEach((r, k) => {
      const name =
        r.impl === 'tsnn'
          ? `tsnn ${r.device}${r.device === best ? ' (auto)' : ''}${nThreads(r.threads)}${r.variant ? `, ${r.variant}` : ''}`
          : `${r.impl}${nThreads(r.threads)}`;
      const tsnnRow = r.impl === 'tsnn' && r.ms !== null;
      if (r.ms === null) missing.push(`n/a: ${title}, ${name}${r.mode !== '-' ? ` ${r.mode}` : ''}: ${r.note ?? 'not run'}`);
      rows.push([
        k === 0 ? title : '',
        name,
        r.mode,
        r.ms === null ? 'n/a' : fmtMs(r.ms),
        tsnnRow && tf !== null ? fmtRatio(r.ms! / tf) : '',
        tsnnRow && pt(r.threads ?? 1) !== null ? fmtRatio(r.ms! / pt(r.threads ?? 1)!) : '',
      ]);
    });
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const lines = [fmt(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) {
    if (r[0] && lines.length > 2) lines.push('');
    lines.push(fmt(r));
  }
  if (missing.length) lines.push('', ...missing);
  return lines.join('\n');
}

/** The comparisons, one line per case: the 1-thread pair first (the headline), then the others, then TF.js. */
function pairsText(pairs: CasePairs[]): string {
  const side = (s: { ms: number; label: string } | null) => (s ? `${fmtMs(s.ms)} ms${s.label ? ` (${s.label})` : ''}` : 'n/a');
  const lines: string[] = [];
  const w = Math.max(...pairs.map((p) => p.title.length));
  const threadCounts = [...new Set(pairs.flatMap((p) => p.torch.map((q) => q.threads)))].sort((a, b) => a - b);
  for (const t of threadCounts) {
    lines.push(
      t === 1
        ? 'HEADLINE: tsnn / PyTorch, both on 1 thread (below 1x: tsnn faster)'
        : `secondary: tsnn / PyTorch, both on ${t} threads (the second vCPU is shared: noisy)`,
    );
    for (const p of pairs) {
      const q = p.torch.find((x) => x.threads === t);
      if (q) lines.push(`  ${p.title.padEnd(w)} ${fmtRatio(q.ratio).padStart(7)}   tsnn ${side(q.tsnn)} / PyTorch ${side(q.pytorch)}`);
    }
  }
  if (!pairs.some((p) => p.tfjs.tfjs)) return lines.join('\n');
  lines.push('tsnn (1 thread) / TF.js-wasm (single-threaded)');
  for (const p of pairs)
    lines.push(`  ${p.title.padEnd(w)} ${fmtRatio(p.tfjs.ratio).padStart(7)}   tsnn ${side(p.tfjs.tsnn)} / TF.js ${side(p.tfjs.tfjs)}`);
  return lines.join('\n');
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(2));

async function main(): Promise<void> {
  const cmd = new Command()
    .name('bench')
    .description('tsnn vs TensorFlow.js (wasm) vs PyTorch (CPU, same thread counts): matmul, MLP forward, MLP train step, conv2d, ResNet-18')
    .option(
      '--warmup <n>',
      'warm-up rounds per case (V8 tiers wasm up to optimised code after a few calls; worker threads take ~20)',
      (v) => parseInt(v, 10),
      20,
    )
    .option('--rounds <n>', 'timed rounds per case and implementation (median reported)', (v) => parseInt(v, 10), 15)
    .option('--budget <ms>', 'time budget per implementation and case; slow ones run fewer rounds (at least 3)', (v) => parseFloat(v), 3000)
    .option('--quick', 'a short run to check that everything works (3 warm-up, 5 rounds, 500 ms budget): not for figures', false)
    .option('--devices <list>', 'tsnn devices to run (comma separated; default: every available one)')
    .option('--cases <list>', `cases to run (comma separated: ${CASES.map((c) => c.id).join(', ')})`)
    .option('--no-torch', 'skip PyTorch')
    .option('--no-tfjs', 'skip TensorFlow.js')
    .option('--no-ablation', "webasm: skip the rows with matmul on the gpu.js kernel (TSNN_WASM_MATMUL=gpujs), the direct wasm gemm's before/after")
    .option(
      '--torch-openblas-env <mode>',
      "'user' (default): the PyTorch process runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, as on a user's machine (its products are checked); 'inherit': keeps them",
      'user',
    )
    .option(
      '--browser',
      'run the cases in headless Chromium instead: tsnn per device beside TF.js webgl and wasm in one page (bench/browser; writes bench/results-browser.json)',
      false,
    )
    .option('--out <file>', 'where to write the JSON results (default: bench/results.json, with --browser bench/results-browser.json)');
  cmd.parse(process.argv);
  const o = cmd.opts<Opts>();
  if (o.quick) Object.assign(o, { warmup: 3, rounds: 5, budget: 500 });
  if (o.torchOpenblasEnv !== 'user' && o.torchOpenblasEnv !== 'inherit')
    throw new Error(`--torch-openblas-env: 'user' or 'inherit', got '${o.torchOpenblasEnv}'`);
  const cases = (o.cases ? o.cases.split(',') : CASES.map((c) => c.id)) as CaseId[];
  const unknown = cases.filter((c) => !CASES.some((k) => k.id === c));
  if (unknown.length) throw new Error(`--cases: unknown ${unknown.join(', ')} (known: ${CASES.map((c) => c.id).join(', ')})`);
  if (o.browser) {
    const out = o.out ?? path.join(repoRoot(), 'bench', 'results-browser.json');
    await runBrowserBench({ ...o, cases, out, tfjs: o.tfjs });
    return;
  }
  const outFile = o.out ?? path.join(repoRoot(), 'bench', 'results.json');
  const started = new Date();
  const loadStart = loadavg();
  const report = tsnn.deviceReport();
  const available = report.filter((d) => d.ok).map((d) => d.device);
  const devices = (o.devices ? o.devices.split(',').filter((d) => available.includes(d as DeviceName)) : available) as DeviceName[];
  const best = tsnn.getDefaultDevice();
  const threads = backendFor(best).threads;
  // tsnn's auto device runs at its thread count and at 1; PyTorch runs at exactly the same counts
  const threadCounts = [...new Set([1, threads])].sort((a, b) => a - b);
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
  };
  const features = wasmFeatures();
  const peak = features.simd ? wasmPeak() : null;
  const header = [
    `tsnn bench, ${started.toISOString()}`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.platform}, node ${machine.node}; load average at start ${loadStart.join(' ')} (1, 5, 15 min)`,
    peak
      ? `wasm SIMD peak probe, 1 thread: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.fma ? 'relaxed_madd' : 'f32x4.mul + f32x4.add'}; relaxed SIMD ${features.relaxedSimd ? 'on' : 'off in this runtime'}), CPU time`
      : 'wasm SIMD: not available here',
    `tsnn: auto device ${best}; timed at ${threadCounts.join(' and ')} thread(s) (TSNN_THREADS); devices ${devices.join(', ')}`,
  ];
  console.error(header.join('\n'));
  for (const d of report)
    console.error(`  ${d.device.padEnd(7)} ${d.ok ? 'available' : 'unavailable'}${d.renderer ? ` (${d.renderer})` : ''}${d.ok ? '' : `: ${d.why}`}`);

  const results: Result[] = [];
  const notes: string[] = [];
  const torchInfos = new Map<number, TorchInfo>();
  const writeDoc = (extra: Record<string, unknown>) => {
    const doc = {
      date: started.toISOString(),
      elapsedS: Math.round((Date.now() - started.getTime()) / 1000),
      command: `node dist/bench/run.js ${process.argv.slice(2).join(' ')}`.trim(),
      machine: {
        ...machine,
        loadavgStart: loadStart.map(Number),
        loadavgEnd: os.loadavg(),
        wasmSimd: features,
        wasmPeakGflops: peak?.gflops ?? null,
      },
      protocol: {
        warmup: o.warmup,
        rounds: o.rounds,
        budgetMs: o.budget,
        quick: o.quick,
        statistic: 'median',
        interleaved: 'tsnn and TF.js rounds alternate within a case; PyTorch runs right after them, in its own process per thread count',
      },
      devices: report,
      auto: best,
      threads: threadCounts,
      ...extra,
      notes,
      results,
    };
    fs.writeFileSync(outFile, JSON.stringify(doc, null, 2) + '\n');
  };
  if (o.torch) {
    // fail before spending minutes on tsnn: is PyTorch on an optimised BLAS, and does it compute right?
    let probe: TorchRun;
    try {
      probe = runTorch(TORCH_SCRIPT, { threads: Math.max(...threadCounts), probe: true, openblasEnv: o.torchOpenblasEnv });
    } catch (e) {
      shoutRefusal(`${(e as Error).message}`);
      writeDoc({ torch: { error: (e as Error).message } });
      process.exitCode = 3;
      return;
    }
    if (probe.error) {
      shoutRefusal(probe.error);
      writeDoc({ torch: { error: probe.error, info: probe.info } });
      process.exitCode = 3;
      return;
    }
    console.error(describeTorch(probe.info));
  }

  let tf: Awaited<ReturnType<typeof tfjsRunners>> | null = null;
  if (o.tfjs) {
    tf = await tfjsRunners(cases);
    notes.push(tf.note);
  }
  // the best device first (at its thread count and single-threaded where it splits kernels across threads)
  const order = [best, ...devices.filter((d) => d !== best)].filter((d) => devices.includes(d));
  try {
    for (const { id } of CASES.filter((c) => cases.includes(c.id))) {
      const caseStart = performance.now();
      console.error(`${id}:`);
      const runners: Runner[] = [];
      for (const d of order) runners.push(...tsnnRunners(id, d, d === best ? [...threadCounts].reverse() : [backendFor(d).threads]));
      // before/after on webasm: the same forms with matmul on the gpu.js kernel instead of the direct wasm gemm
      if (best === 'webasm' && !id.startsWith('resnet18') && o.ablation)
        runners.push(...gpujsMatmulRunners(tsnnRunners(id, best, [...threadCounts].reverse())));
      const tfRunner = tf?.runners.get(id);
      if (tfRunner) runners.push(tfRunner);
      timeCase(id, runners, o, results);
      if (o.torch) benchTorch(id, threadCounts, o, results, torchInfos);
      console.error(`  (${id}: ${((performance.now() - caseStart) / 1000).toFixed(0)} s)`);
    }
  } catch (e) {
    if (!(e instanceof TorchRefused)) throw e;
    shoutRefusal(e.message);
    writeDoc({ torch: { error: e.message, info: e.run.info } });
    process.exitCode = 3;
    return;
  }
  const torchInfo = torchInfos.get(1) ?? [...torchInfos.values()][0];
  if (torchInfo) notes.push(describeTorch(torchInfo));
  notes.push(
    `tsnn ${best}: kernels above ~2M multiply-adds may split across ${threads} thread(s) (TSNN_THREADS), per kernel only while that is faster than running it whole (src/backend/split-policy.ts); rows marked "1 thread" turn splitting off`,
  );
  if (cases.some((c) => c.startsWith('conv')))
    notes.push(
      'conv cases: tsnn rows name the conv2d variant (forced with TSNN_CONV); without it conv2d picks the implicit GEMM on webasm for this shape and the direct kernels on cpu and gpu',
    );
  if (cases.some((c) => c.startsWith('resnet18')))
    notes.push(
      'resnet18_eval(_b16): samples/resnet/resnet18.ts (torchvision layout, its state-dict keys) vs torchvision.models.resnet18(), both eval mode, no autograd; no TF.js version in this bench',
    );
  const pairs = casePairs(
    CASES.filter((c) => cases.includes(c.id)),
    results,
    best,
    o.torch ? threadCounts : [],
  );
  console.log(`\n${header.join('\n')}`);
  if (torchInfo) console.log(describeTorch(torchInfo));
  console.log(`\n${table(results, best)}\n`);
  console.log(`${pairsText(pairs)}\n`);
  for (const n of notes) console.log(`- ${n}`);
  console.log(
    `- ratios are tsnn ms / reference ms (below 1x: tsnn is faster); tsnn's side of a pair is its fastest row on ${best} at that thread count`,
  );
  console.log(`- medians; load average at the end ${loadavg().join(' ')}; ${Math.round((Date.now() - started.getTime()) / 1000)} s in all`);
  writeDoc({ torch: torchInfo ? { info: torchInfo, byThreads: Object.fromEntries(torchInfos) } : null, pairs });
  console.log(`- results written to ${path.relative(process.cwd(), outFile)}`);
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
    () => process.exit(process.exitCode ?? 0),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
