/**
 * Before/after of the direct WebAssembly matmul on webasm, robust to a busy machine: the same cases with
 * matmul on the direct wasm gemm and on the gpu.js kernel (TSNN_WASM_MATMUL=gpujs), rounds interleaved,
 * each timed in wall time and in this process's CPU time (user + system: what the computation cost,
 * whatever share of the cores other processes took; at 1 thread the fairer figure on a loaded VM).
 * Also prints the wasm SIMD peak probe. `npm run bench` has the full comparison with TF.js and PyTorch.
 *
 *   npm run build && node dist/bench/wasm-matmul.js [--rounds 15] [--threads 1,2]
 */
import { Command } from 'commander';
import * as os from 'os';
import * as tsnn from '../src';
import { nn, optim, tidy, noGrad, Tensor } from '../src';
import { wasmPeak } from './wasm-peak';
import { wasmFeatures } from '../src/backend/wasm/features';

const o = new Command()
  .option('--rounds <n>', 'timed rounds per case and form', (v) => parseInt(v, 10), 15)
  .option('--warmup <n>', 'warm-up rounds', (v) => parseInt(v, 10), 10)
  .option('--threads <list>', 'TSNN_THREADS values', '1,2')
  .option(
    '--cases <list>',
    'matmul512,mlp_fwd_b256,mlp_fwd_b1,mlp_train_b256,conv_train',
    'matmul512,mlp_fwd_b256,mlp_fwd_b1,mlp_train_b256,conv_train',
  )
  .parse()
  .opts<{ rounds: number; warmup: number; threads: string; cases: string }>();

const device = 'webasm';

function mlp(): nn.Module {
  tsnn.manualSeed(0);
  return new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10)).to(device);
}

function makeCase(id: string): () => void {
  tsnn.manualSeed(1);
  if (id === 'matmul512') {
    const a = tsnn.rand([512, 512], { device });
    const b = tsnn.rand([512, 512], { device });
    return () => tidy(() => void a.matmul(b).dataSync());
  }
  if (id === 'mlp_fwd_b256' || id === 'mlp_fwd_b1') {
    const net = mlp();
    const x = tsnn.rand([id === 'mlp_fwd_b1' ? 1 : 256, 784], { device });
    return () => tidy(() => noGrad(() => void net(x).dataSync()));
  }
  if (id === 'mlp_train_b256') {
    const net = mlp();
    const opt = new optim.SGD(net.parameters(), { lr: 0.01 });
    const x = tsnn.rand([256, 784], { device });
    const y = tsnn.tensor(
      Array.from({ length: 256 }, (_, i) => i % 10),
      { device },
    );
    return () =>
      tidy(() => {
        opt.zeroGrad();
        const loss = tsnn.F.crossEntropy(net(x), y);
        loss.backward();
        opt.step();
        void loss.item();
      });
  }
  if (id === 'conv_fwd') {
    const x = tsnn.rand([128, 16, 14, 14], { device });
    const w = tsnn.rand([32, 16, 3, 3], { device });
    return () => tidy(() => noGrad(() => void (tsnn.F.conv2d(x, w, null, { padding: 1 }) as Tensor).dataSync()));
  }
  if (id === 'conv_train') {
    // bench/run.ts's conv case: [128,16,14,14] * [32,16,3,3], padding 1, forward + backward, im2col
    const x = tsnn.rand([128, 16, 14, 14], { device, requiresGrad: true });
    const w = tsnn.rand([32, 16, 3, 3], { device, requiresGrad: true });
    const gy = tsnn.rand([128, 32, 14, 14], { device });
    return () =>
      tidy(() => {
        (tsnn.F.conv2d(x, w, null, { padding: 1 }) as Tensor).backward(gy);
        void x.grad!.dataSync();
        void w.grad!.dataSync();
        x.grad = null;
        w.grad = null;
      });
  }
  throw new Error(`unknown case ${id}`);
}

function withEnv<T>(env: Record<string, string>, f: () => T): T {
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const features = wasmFeatures();
const peak = wasmPeak();
console.log(
  `${new Date().toISOString()}  ${os.cpus()[0]?.model}, ${os.cpus().length} cores, node ${process.version}, load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log(
  `wasm SIMD peak probe, 1 thread: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.fma ? 'relaxed_madd' : 'mul + add'}); relaxed SIMD ${features.relaxedSimd ? 'available' : 'not available in this runtime'}`,
);
console.log('case             threads  form          wall ms (median)  CPU ms (median)  GFLOP/s (CPU)');
process.env.TSNN_CONV = 'im2col';
for (const id of o.cases.split(',')) {
  for (const t of o.threads.split(',')) {
    const forms = [
      { name: 'direct wasm', env: { TSNN_THREADS: t, TSNN_WASM_MATMUL: 'direct' } },
      { name: 'gpu.js', env: { TSNN_THREADS: t, TSNN_WASM_MATMUL: 'gpujs' } },
    ];
    const runs = forms.map((f) => ({ ...f, fn: withEnv(f.env, () => makeCase(id)), wall: [] as number[], cpu: [] as number[] }));
    for (const r of runs) for (let i = 0; i < o.warmup; i++) withEnv(r.env, r.fn);
    for (let k = 0; k < o.rounds; k++) {
      for (let j = 0; j < runs.length; j++) {
        const r = runs[(j + k) % runs.length];
        withEnv(r.env, () => {
          const c = process.cpuUsage();
          const w = performance.now();
          r.fn();
          r.wall.push(performance.now() - w);
          const d = process.cpuUsage(c);
          r.cpu.push((d.user + d.system) / 1000);
        });
      }
    }
    for (const r of runs) {
      const cpu = median(r.cpu);
      const gf = id === 'matmul512' ? ((2 * 512 ** 3) / cpu / 1e6).toFixed(1) : '';
      console.log(
        `${id.padEnd(16)} ${t.padStart(7)}  ${r.name.padEnd(12)}  ${median(r.wall).toFixed(2).padStart(16)}  ${cpu.toFixed(2).padStart(15)}  ${gf.padStart(13)}`,
      );
    }
  }
}
