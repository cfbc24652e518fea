/**
 * Where the time goes: runs one bench case (eager and compiled) for a number of steps with the backend's
 * kernel profiler on, and prints the kernels by total time with the first line of their source.
 *
 *   npm run build && node dist/bench/profile.js --case mlp_train_b256 --steps 40
 */
import { Command } from 'commander';
import * as tsnn from '../src';
import { nn, optim, tidy, noGrad } from '../src';
import { profile } from '../src/backend/gpujs-backend';
import { ResNet } from '../samples/mnist/models';

const opts = new Command()
  .option('--case <id>', "mlp_fwd_b256 | mlp_fwd_b1 | mlp_train_b256 | cnn_train_b128 (the MNIST sample's ResNet)", 'mlp_train_b256')
  .option('--steps <n>', 'profiled steps (after 20 warm-up steps)', (v) => parseInt(v, 10), 40)
  .option('--device <name>', 'tsnn device', 'auto')
  .parse()
  .opts<{ case: string; steps: number; device: string }>();

function makeMlp(device: string) {
  tsnn.manualSeed(0);
  return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(device as any);
}

for (const mode of ['eager', 'compiled'] as const) {
  const device = opts.device === 'auto' ? tsnn.getDefaultDevice() : opts.device;
  const cnn = opts.case === 'cnn_train_b128';
  tsnn.manualSeed(0);
  const net = cnn ? new ResNet().to(device as any) : makeMlp(device);
  const model: any = mode === 'compiled' ? nn.compile(net) : net;
  const batch = opts.case === 'mlp_fwd_b1' ? 1 : cnn ? 128 : 256;
  const x = tsnn.rand(cnn ? [batch, 1, 28, 28] : [batch, 784], { device: device as any });
  const y = tsnn.tensor(
    Array.from({ length: batch }, (_, i) => i % 10),
    { device: device as any },
  );
  const opt = cnn ? optim.Adam(net.parameters(), { lr: 3e-3 }) : optim.SGD(net.parameters(), { lr: 0.01 });
  const step =
    opts.case === 'mlp_train_b256' || cnn
      ? () =>
          tidy(() => {
            opt.zeroGrad();
            const loss = tsnn.F.crossEntropy(model(x), y);
            loss.backward();
            opt.step();
            void loss.item();
          })
      : () => tidy(() => noGrad(() => void model(x).dataSync()));
  for (let i = 0; i < 20; i++) step();
  profile.kernels.clear();
  profile.on = true;
  const t0 = performance.now();
  for (let i = 0; i < opts.steps; i++) step();
  const total = (performance.now() - t0) / opts.steps;
  profile.on = false;
  const rows = [...profile.kernels.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const inKernels = rows.reduce((s, [, e]) => s + e.ms, 0) / opts.steps;
  console.log(`\n${opts.case} ${mode} on ${device}: ${total.toFixed(2)} ms/step, ${inKernels.toFixed(2)} ms in ${rows.length} kernels`);
  for (const [source, e] of rows) {
    const body = source.split('\n').slice(1, 4).join(' ').replace(/\s+/g, ' ').slice(0, 110);
    console.log(
      `  ${(e.ms / opts.steps).toFixed(3).padStart(7)} ms  x${(e.runs / opts.steps).toFixed(0)}  out ${String(e.outSize).padStart(7)}  ${body}`,
    );
  }
}
