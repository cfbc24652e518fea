/**
 * Device memory does not grow over a training loop: forward + backward + in-place SGD update inside
 * tidy(), 10,000 steps; the number of live device buffers is the same at step 100 and at the end.
 */
import { expect } from 'chai';
import { backendFor, noGrad, tensor, tidy, DeviceName } from '../../src';
import { testDevices } from '../helpers';
import { values } from './util';

/** GL pays a texture round trip per step; it runs fewer steps (cpu and webasm always run 10,000). */
const STEPS: Partial<Record<DeviceName, number>> = { gpu: 2000 };

describe('memory: a 10,000-step training loop does not leak device buffers', function () {
  this.timeout(120000);
  for (const device of testDevices()) {
    const steps = STEPS[device] ?? 10000;
    it(`${device}: ${steps} steps of forward/backward/SGD inside tidy()`, () => {
      const stats = backendFor(device).stats;
      const w = tensor(Float32Array.from(values(256, 3, -0.1, 0.1)), { shape: [16, 16], device, requiresGrad: true });
      const x = tensor(Float32Array.from(values(16, 4)), { shape: [1, 16], device });
      const target = tensor(Float32Array.from(values(16, 5)), { shape: [1, 16], device });
      const lossAt = (): number => noGrad(() => tidy(() => x.matmul(w).sub(target).square().sum().item()));
      const first = lossAt();
      let liveAt100 = -1;
      let compiledAt100 = -1;
      for (let step = 1; step <= steps; step++) {
        tidy(() => {
          const loss = x.matmul(w).sub(target).square().sum();
          loss.backward();
          noGrad(() => w.sub_(w.grad!.mul(0.001)));
          w.grad!.zero_();
        });
        if (step === 100) {
          liveAt100 = stats.live;
          compiledAt100 = stats.kernelsCompiled;
        }
      }
      expect(stats.live, `live device buffers after ${steps} steps (vs. step 100)`).to.equal(liveAt100);
      expect(stats.kernelsCompiled, 'kernels compiled after step 100').to.equal(compiledAt100);
      // and it actually trained
      expect(lossAt()).to.be.lessThan(first * 0.5);
      for (const t of [w, x, target, w.grad!]) t.dispose();
    });
  }
});
