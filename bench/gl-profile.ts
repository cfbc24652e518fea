/**
 * What the `gpu` device (gpu.js on WebGL: headless-gl in Node) does per step: kernel draws, texture uploads
 * (texImage2D with data), texture allocations (texImage2D without data), read-backs (readPixels), and the
 * median wall time, for the GL cases of bench/README ("GL data movement"). Counts come from wrapping the
 * GL context's methods, so they see everything gpu.js does, not only what tsnn asks for.
 *
 *   npm run build && xvfb-run -a -s "-ac -screen 0 1280x1024x24" node dist/bench/gl-profile.js [--case mlp_train_b256] [--steps 5] [--kernels]
 *
 * `--kernels` also prints each kernel's time (the profiler calls gl.finish() after every kernel on GL, so
 * these times include the GPU work; they slow the step itself).
 */
import { Command } from 'commander';
import * as tsnn from '../src';
import { nn, optim, tidy, noGrad } from '../src';
import { backendFor } from '../src/backend/devices';
import { profile } from '../src/backend/gpujs-backend';

const opts = new Command()
  .option('--case <ids>', 'comma-separated: matmul512, mlp_fwd_b256, mlp_train_b256, conv_train', 'matmul512,mlp_fwd_b256,mlp_train_b256,conv_train')
  .option('--steps <n>', 'timed steps per case (after 2 warm-up steps)', (v) => parseInt(v, 10), 5)
  .option('--kernels', 'print per-kernel times (gl.finish after each kernel)')
  .option('--device <name>', 'tsnn device', 'gpu')
  .parse()
  .opts<{ case: string; steps: number; kernels?: boolean; device: string }>();

const device = opts.device as tsnn.DeviceName;
const counts = { draws: 0, uploads: 0, uploadBytes: 0, allocs: 0, readbacks: 0, readBytes: 0 };

/** Wraps the backend's GL context (created with its first kernel) so every call is counted. */
function instrument(): void {
  const gl: any = (backendFor(device) as any).gpu.context;
  if (!gl || gl.__counted) return;
  gl.__counted = true;
  const wrap = (name: string, f: (...args: any[]) => void) => {
    const orig = gl[name].bind(gl);
    gl[name] = (...args: any[]) => {
      f(...args);
      return orig(...args);
    };
  };
  wrap('drawArrays', () => counts.draws++);
  wrap('texImage2D', (...a: any[]) => {
    const data = a[a.length - 1];
    if (data) {
      counts.uploads++;
      counts.uploadBytes += data.byteLength ?? 0;
    } else counts.allocs++;
  });
  wrap('texSubImage2D', (...a: any[]) => {
    counts.uploads++;
    counts.uploadBytes += a[a.length - 1]?.byteLength ?? 0;
  });
  wrap('readPixels', (...a: any[]) => {
    counts.readbacks++;
    counts.readBytes += a[2] * a[3] * 16;
  });
}

function cases(): Record<string, () => () => void> {
  return {
    matmul512: () => {
      tsnn.manualSeed(1);
      const a = tsnn.rand([512, 512], { device });
      const b = tsnn.rand([512, 512], { device });
      return () => tidy(() => void a.matmul(b).dataSync());
    },
    mlp_fwd_b256: () => {
      const net = mlp();
      const x = tsnn.rand([256, 784], { device });
      return () => tidy(() => noGrad(() => void net(x).dataSync()));
    },
    mlp_train_b256: () => {
      const net = mlp();
      const x = tsnn.rand([256, 784], { device });
      const y = tsnn.tensor(
        Array.from({ length: 256 }, (_, i) => i % 10),
        { device },
      );
      const opt = optim.SGD(net.parameters(), { lr: 0.01 });
      // the plain PyTorch-style step: no tidy
      return () => {
        opt.zeroGrad();
        const loss = tsnn.F.crossEntropy(net(x), y);
        loss.backward();
        opt.step();
        void loss.item();
      };
    },
    conv_train: () => {
      // the issue-12 conv: 3x3, 32 -> 32 channels on 32x32, batch 32, forward + backward
      tsnn.manualSeed(2);
      const x = tsnn.rand([32, 32, 32, 32], { device, requiresGrad: true });
      const w = tsnn.rand([32, 32, 3, 3], { device, requiresGrad: true });
      const gy = tsnn.rand([32, 32, 32, 32], { device });
      return () =>
        tidy(() => {
          tsnn.F.conv2d(x, w, null, { padding: 1 }).backward(gy);
          void x.grad!.dataSync();
          void w.grad!.dataSync();
          x.grad = null;
          w.grad = null;
        });
    },
  };
}

function mlp(): nn.Module {
  tsnn.manualSeed(0);
  return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)).to(device);
}

const all = cases();
console.log(`tsnn on '${device}' (${tsnn.deviceReport().find((d) => d.device === device)?.renderer ?? '?'}), ${opts.steps} steps per case`);
for (const id of opts.case.split(',')) {
  if (!all[id]) throw new Error(`unknown case '${id}'`);
  const step = all[id]();
  step();
  step();
  instrument();
  const b = backendFor(device);
  const live0 = b.stats.live;
  Object.keys(counts).forEach((k) => ((counts as any)[k] = 0));
  const times: number[] = [];
  for (let i = 0; i < opts.steps; i++) {
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  }
  times.sort((p, q) => p - q);
  const per = (v: number) => (v / opts.steps).toFixed(1);
  console.log(
    `${id.padEnd(15)} ${times[times.length >> 1].toFixed(1).padStart(8)} ms/step (min ${times[0].toFixed(1)})  per step: ` +
      `${per(counts.draws)} draws, ${per(counts.uploads)} uploads (${per(counts.uploadBytes / 1024)} KiB), ${per(counts.allocs)} texture allocs, ` +
      `${per(counts.readbacks)} read-backs (${per(counts.readBytes / 1024)} KiB); live buffers ${live0} -> ${b.stats.live}`,
  );
  if (opts.kernels) {
    profile.kernels.clear();
    profile.on = true;
    for (let i = 0; i < opts.steps; i++) step();
    profile.on = false;
    const rows = [...profile.kernels.entries()].sort((p, q) => q[1].ms - p[1].ms);
    for (const [source, e] of rows) {
      const body = source.split('\n').slice(1, 4).join(' ').replace(/\s+/g, ' ').slice(0, 100);
      console.log(
        `  ${(e.ms / opts.steps).toFixed(2).padStart(8)} ms x${(e.runs / opts.steps).toFixed(0)} out ${String(e.outSize).padStart(7)}  ${body}`,
      );
    }
  }
}
