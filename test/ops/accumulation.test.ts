/**
 * Gradient accumulation into `.grad` across backward passes: every leaf's `.grad` is its own memory,
 * whatever views and shape ops the gradients went through (two leaves' gradients can be views of one
 * buffer), so later accumulations and in-place edits count once. Checked on random programs
 * (view-programs.ts) against float64 finite differences summed over the passes, and on a few programs
 * against PyTorch (test/fixtures/gen_accumulation.py → accumulation.json).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { getDefaultDevice, tensor, tidy } from '../../src';
import { expectClose, testDevices } from '../helpers';
import { editGrad, editRef, fdGrad, genProgram, Program, runPass } from './view-programs';

/** fixed for reproducible runs; FC_SEED=n explores others */
const SEED = Number(process.env.FC_SEED) || 20261202;

/** Runs every pass of `p` on `device`, checking each leaf's .grad after each backward and each edit. */
function checkProgram(p: Program, device: Parameters<typeof runPass>[3]): void {
  tidy(() => {
    const leaves = p.leaves.map((l) => tensor(l.data, { shape: l.shape, device, requiresGrad: true }));
    let want: (number[] | null)[] = leaves.map(() => null);
    const check = (when: string) =>
      leaves.forEach((leaf, i) => {
        const what = `${when}, leaf ${i}, program ${JSON.stringify(p)}`;
        if (want[i] === null) expect(leaf.grad, what).to.equal(null);
        else expectClose(leaf.grad!, want[i]!, 1e-3, 1e-3, what);
      });
    p.passes.forEach((pass, k) => {
      const times = pass.twice ? 2 : 1;
      want = want.map((g, i) => {
        const d = fdGrad(p, pass, i);
        return d.map((v, j) => (g ? g[j] : 0) + times * v);
      });
      runPass(p, pass, leaves, device);
      check(`after backward ${k}`);
      for (const e of pass.edits) {
        editGrad(leaves[e.leaf], e);
        want[e.leaf] = editRef(want[e.leaf], e);
      }
      check(`after the edits of pass ${k}`);
    });
  });
}

describe('gradient accumulation', () => {
  for (const device of testDevices()) {
    describe(device, () => {
      it('random programs of views, shape ops, shared leaves and in-place ops: .grad equals the summed finite differences, with .grad edited between passes', () => {
        // the accumulation is device-independent bookkeeping: many runs on the default device, a few on the
        // others (each new shape compiles kernels there, slowly on gpu)
        const runs = device === getDefaultDevice() ? 200 : 15;
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 2 ** 30 }), (seed) => checkProgram(genProgram(seed), device)),
          { numRuns: runs, seed: SEED },
        );
      });
    });
  }
});
