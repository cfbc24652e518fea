/**
 * GL quads matmul with an A whose rows are not texel runs (a transposed view, as in the weight gradient
 * g^T x): matmul.ts copies A row-major first (one texel read per 4 k steps instead of 4 scalar reads). The
 * product equals a float64 reference and the cpu device, the copy is freed right away, and gradients through
 * it (nn.Linear's weight gradient) equal the cpu device's.
 */
import { expect } from 'chai';
import { manualSeed, rand, noGrad } from '../../src';
import { backendFor } from '../../src/backend/devices';
import { expectClose, testDevices } from '../helpers';

(testDevices().includes('gpu') ? describe : describe.skip)('gpu: matmul with a transposed A reads a row-major copy', () => {
  it('A^T @ B (K % 4 == 0) equals the float64 reference and cpu; the copy does not stay allocated', () => {
    manualSeed(11);
    const [M, K, N] = [12, 20, 8];
    const a0 = rand([K, M]).sub(0.5); // A = a0^T: [M, K], unit stride along M
    const b0 = rand([K, N]).sub(0.5);
    const av = a0.dataSync();
    const bv = b0.dataSync();
    const want: number[] = [];
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += av[k * M + m] * bv[k * N + n];
        want.push(acc);
      }
    const a = a0.to('gpu');
    const b = b0.to('gpu');
    const stats = backendFor('gpu').stats;
    noGrad(() => a.transpose(0, 1).matmul(b).dispose()); // compiles, uploads
    const live = stats.live;
    const runs = stats.kernelRuns;
    const y = noGrad(() => a.transpose(0, 1).matmul(b));
    expect(stats.kernelRuns - runs, 'the copy of A, then the matmul').to.equal(2);
    expect(stats.live - live, 'only the product is left').to.equal(1);
    expectClose(y, want, 1e-5, 1e-5);
    expectClose(y, a0.transpose(0, 1).matmul(b0), 1e-5, 1e-5);
  });

  it("nn.Linear's gradients (g^T x for the weight) equal the cpu device's", () => {
    manualSeed(12);
    const x0 = rand([16, 24]).sub(0.5);
    const w0 = rand([8, 24]).sub(0.5);
    const g0 = rand([16, 8]);
    const grads = (device: 'cpu' | 'gpu') => {
      const x = x0.to(device).detach().requiresGrad_();
      const w = w0.to(device).detach().requiresGrad_();
      x.matmul(w.transpose(0, 1)).backward(g0.to(device));
      return [x.grad!, w.grad!];
    };
    const [gxc, gwc] = grads('cpu');
    const [gxg, gwg] = grads('gpu');
    expectClose(gxg, gxc, 1e-5);
    expectClose(gwg, gwc, 1e-5);
  });
});
