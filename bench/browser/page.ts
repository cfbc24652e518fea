/**
 * The browser bench's page (bundled by bench/browser/run-browser.ts): the bench cases of bench/run.ts timed in
 * this page for tsnn on each device it has here and for TF.js 4.22 on its `webgl` and `wasm` backends.
 * Runners of a case are interleaved round by round (as in Node), so all see the same machine load. Each op ends
 * with a read-back, as in Node; a timed round repeats it for ≥ minRoundMs (a page's clock is coarsened to 0.1 ms).
 */
import * as tsnn from '../../src';
import { Tensor, nn, tidy, noGrad, DeviceName } from '../../src';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BrowserBenchOptions, BrowserBenchResult, BrowserBenchDoc } from './types';
import type { CaseId } from '../cases';

const CONV = { N: 128, C: 16, H: 14, W: 14, O: 32, K: 3 };

interface Runner {
  impl: 'tsnn' | 'tfjs-webgl' | 'tfjs-wasm';
  device: string;
  mode: 'eager' | 'compiled' | '-';
  /** one op, ending with a read-back of its result */
  fn: () => void | Promise<void>;
  failed?: string;
}

const log = (s: string) => console.log(`[bench] ${s}`);

// ---- tsnn ------------------------------------------------------------------------------------------------------
function tsnnRunners(id: CaseId, device: DeviceName): Runner[] {
  const base = { impl: 'tsnn' as const, device };
  tsnn.manualSeed(1);
  if (id === 'matmul') {
    const a = tsnn.rand([512, 512], { device });
    const b = tsnn.rand([512, 512], { device });
    return [{ ...base, mode: 'eager', fn: () => tidy(() => void a.matmul(b).dataSync()) }];
  }
  if (id === 'conv_fwd' || id === 'conv_train') {
    const { N, C, H, W, O, K } = CONV;
    const x = tsnn.rand([N, C, H, W], { device, requiresGrad: true });
    const w = tsnn.rand([O, C, K, K], { device, requiresGrad: true });
    const gy = tsnn.rand([N, O, H, W], { device });
    if (id === 'conv_fwd')
      return [{ ...base, mode: 'eager', fn: () => tidy(() => noGrad(() => void tsnn.F.conv2d(x, w, null, { padding: 1 }).dataSync())) }];
    return [
      {
        ...base,
        mode: 'eager',
        fn: () =>
          tidy(() => {
            tsnn.F.conv2d(x, w, null, { padding: 1 }).backward(gy);
            void x.grad!.dataSync();
            void w.grad!.dataSync();
            x.grad = null;
            w.grad = null;
          }),
      },
    ];
  }
  if (id.startsWith('resnet18')) return [];
  const x = tsnn.rand([id === 'mlp_fwd_b1' ? 1 : 256, 784], { device });
  const y = tsnn.tensor(
    Array.from({ length: 256 }, (_, i) => i % 10),
    { device },
  );
  const out: Runner[] = [];
  for (const mode of ['eager', 'compiled'] as const) {
    tsnn.manualSeed(0);
    const net = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10)).to(device);
    const model: (x: Tensor) => Tensor = mode === 'compiled' ? nn.compile(net) : net;
    if (id === 'mlp_train_b256') {
      const opt = new tsnn.optim.SGD(net.parameters(), { lr: 0.01 });
      out.push({
        ...base,
        mode,
        fn: () =>
          tidy(() => {
            opt.zeroGrad();
            const loss = tsnn.F.crossEntropy(model(x), y);
            loss.backward();
            opt.step();
            void loss.item();
          }),
      });
    } else out.push({ ...base, mode, fn: () => tidy(() => noGrad(() => void model(x).dataSync())) });
  }
  return out;
}

// ---- TF.js -----------------------------------------------------------------------------------------------------
/** The TF.js runners of a case on one backend; every round first makes that backend current (tensors live on it). */
async function tfjsRunners(id: CaseId, backend: 'webgl' | 'wasm'): Promise<Runner[]> {
  const impl = backend === 'webgl' ? ('tfjs-webgl' as const) : ('tfjs-wasm' as const);
  const use = (f: () => void) => async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
    f();
  };
  const one = (f: () => void): Runner[] => [{ impl, device: backend, mode: '-', fn: use(f) }];
  await tf.setBackend(backend); // the tensors below live on it
  if (id === 'matmul') {
    const a = tf.randomUniform([512, 512]);
    const b = tf.randomUniform([512, 512]);
    return one(() => tf.tidy(() => void tf.matMul(a, b).dataSync()));
  }
  if (id === 'conv_fwd' || id === 'conv_train') {
    const { N, C, H, W, O, K } = CONV;
    const cx = tf.randomUniform([N, H, W, C]) as tf.Tensor4D;
    const cw = tf.randomUniform([K, K, C, O]) as tf.Tensor4D;
    const cdy = tf.randomUniform([N, H, W, O]) as tf.Tensor4D;
    if (id === 'conv_fwd') return one(() => tf.tidy(() => void tf.conv2d(cx, cw, 1, 'same').dataSync()));
    const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'));
    return one(() =>
      tf.tidy(() => {
        const [dx, dw] = grads([cx, cw], cdy);
        void dx.dataSync();
        void dw.dataSync();
      }),
    );
  }
  if (id.startsWith('resnet18')) return [];
  const W1 = tf.variable(tf.randomUniform([784, 256], -0.035, 0.035));
  const b1 = tf.variable(tf.zeros([256]));
  const W2 = tf.variable(tf.randomUniform([256, 10], -0.06, 0.06));
  const b2 = tf.variable(tf.zeros([10]));
  const fwd = (x: tf.Tensor) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), W2), b2);
  if (id === 'mlp_fwd_b256' || id === 'mlp_fwd_b1') {
    const x = tf.randomUniform([id === 'mlp_fwd_b1' ? 1 : 256, 784]);
    return one(() => tf.tidy(() => void fwd(x).dataSync()));
  }
  const x = tf.randomUniform([256, 784]);
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 256 }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const opt = tf.train.sgd(0.01);
  return one(() =>
    tf.tidy(() => {
      const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(labels, fwd(x)) as tf.Scalar, true)!;
      void loss.dataSync();
    }),
  );
}

// ---- timing ----------------------------------------------------------------------------------------------------
async function timeCase(id: CaseId, runners: Runner[], o: BrowserBenchOptions, out: BrowserBenchResult[]): Promise<void> {
  const reps = new Map<Runner, number>();
  const est = new Map<Runner, number>();
  for (const r of runners) {
    try {
      await r.fn(); // compiles kernels / shaders, captures graphs
      let t = performance.now();
      await r.fn();
      const second = Math.max(performance.now() - t, 0.05);
      // warm-up within twice the budget (V8 tiers wasm up after a few calls)
      const warm = Math.max(2, Math.min(o.warmup, Math.floor((2 * o.budget) / second)));
      for (let i = 0; i < warm; i++) await r.fn();
      // one op's time once warm (the fastest of 3 probes), to size a round: the warm-up's mean includes the slow start
      let perOp = Infinity;
      for (let i = 0; i < 3 && (i === 0 || perOp * 3 < 2 * o.budget); i++) {
        t = performance.now();
        await r.fn();
        perOp = Math.min(perOp, Math.max(performance.now() - t, 0.05)); // the clock ticks in 0.1 ms
      }
      const k = Math.max(1, Math.ceil(o.minRoundMs / perOp));
      reps.set(r, k);
      est.set(r, perOp * k);
    } catch (e) {
      r.failed = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  const ok = runners.filter((r) => !r.failed);
  const target = new Map(ok.map((r) => [r, Math.max(3, Math.min(o.rounds, Math.floor(o.budget / Math.max(est.get(r)!, 1e-3))))]));
  const times = new Map<Runner, number[]>(ok.map((r) => [r, []]));
  for (let k = 0; ok.some((r) => times.get(r)!.length < target.get(r)!); k++) {
    for (let j = 0; j < ok.length; j++) {
      const r = ok[(j + k) % ok.length];
      if (times.get(r)!.length >= target.get(r)!) continue;
      const n = reps.get(r)!;
      if (r.impl !== 'tsnn') await r.fn(); // a TF.js backend switch happens outside the timing
      const t = performance.now();
      for (let i = 0; i < n; i++) await r.fn();
      times.get(r)!.push((performance.now() - t) / n);
    }
  }
  for (const r of runners) {
    const ts = times.get(r)?.sort((a, b) => a - b);
    const row = { case: id, impl: r.impl, device: r.device, mode: r.mode };
    if (!ts) {
      out.push({ ...row, ms: null, rounds: 0, note: r.failed ?? 'n/a' });
      log(`${id} ${r.impl} ${r.device} ${r.mode}: ${r.failed}`);
      continue;
    }
    out.push({ ...row, ms: ts[ts.length >> 1], min: ts[0], rounds: ts.length, reps: reps.get(r) });
    log(`${id} ${r.impl} ${r.device} ${r.mode}: ${ts[ts.length >> 1].toFixed(3)} ms (median of ${ts.length} rounds of ${reps.get(r)})`);
  }
}

function glRenderer(): string {
  const gl = document.createElement('canvas').getContext('webgl2') ?? document.createElement('canvas').getContext('webgl');
  if (!gl) return 'no WebGL';
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}

async function run(o: BrowserBenchOptions): Promise<BrowserBenchDoc> {
  const report = tsnn.deviceReport();
  const devices = report.filter((d) => d.ok && d.device !== 'webgpu' && (!o.devices || o.devices.includes(d.device))).map((d) => d.device);
  setWasmPaths(new URL('./', location.href).href);
  const tfBackends: ('webgl' | 'wasm')[] = [];
  const tfNotes: string[] = [];
  if (o.tfjs) {
    for (const b of ['webgl', 'wasm'] as const) {
      try {
        if (await tf.setBackend(b)) tfBackends.push(b);
        else tfNotes.push(`TF.js ${b} backend did not initialise`);
      } catch (e) {
        tfNotes.push(`TF.js ${b}: ${(e as Error).message}`);
      }
    }
  }
  const wasmSimd = tfBackends.includes('wasm') ? Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) : null;
  const wasmThreads = tfBackends.includes('wasm') ? Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) : null;
  log(`tsnn devices: ${devices.join(', ')}; TF.js ${tf.version_core} backends: ${tfBackends.join(', ')}`);
  const results: BrowserBenchResult[] = [];
  for (const id of o.cases) {
    const runners: Runner[] = [];
    for (const d of devices) {
      try {
        runners.push(...tsnnRunners(id, d));
      } catch (e) {
        runners.push({ impl: 'tsnn', device: d, mode: 'eager', fn: () => undefined, failed: `failed: ${(e as Error).message}` });
      }
    }
    for (const b of tfBackends) runners.push(...(await tfjsRunners(id, b)));
    await timeCase(id, runners, o, results);
  }
  return {
    userAgent: navigator.userAgent,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    webglRenderer: glRenderer(),
    devices: report,
    tfjs: { version: tf.version_core, backends: tfBackends, wasmSimd, wasmThreads, notes: tfNotes },
    results,
  };
}

(globalThis as unknown as { tsnnBench: { run: typeof run } }).tsnnBench = { run };
