/**
 * Gradient accumulation into `.grad` across backward passes: every leaf's `.grad` is its own memory,
 * whatever views and shape ops the gradients went through (two leaves' gradients can be views of one
 * buffer), so later accumulations and in-place edits count once. Checked on random programs
 * (view-programs.ts) against float64 finite differences summed over the passes, and on a few programs
 * against PyTorch (test/fixtures/gen_accumulation.py → accumulation.json).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { DeviceName, getDefaultDevice, ops, tensor, Tensor, tidy } from '../../src';
import { expectClose, fixture, testDevices } from '../helpers';
import { editGrad, editRef, fdGrad, genProgram, Program, runPass } from './view-programs';

/** fixed for reproducible runs; FC_SEED=n explores others */
const SEED = Number(process.env.FC_SEED) || 20261202;

/** Runs every pass of `p` on `device`, checking each leaf's .grad after each backward and each edit. */
function checkProgram(p: Program, device: DeviceName): void {
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

type Snap = (label: string) => void;
type Inputs = Record<string, Tensor & Tensor[]>;

/** The steps of each case in gen_accumulation.py, line for line. */
const CASES: Record<string, (i: Inputs, snap: Snap) => void> = {
  unsqueeze_add_broadcast({ p, q, xs }, snap) {
    for (const x of xs) {
      x.mul(p.unsqueeze(0).add(q)).sum().backward();
      snap('pass');
    }
  },
  add_same_shape_grad_edits({ a, b, xs }, snap) {
    const edits = [() => (a.grad!.mul_(0.5), b.grad!.add_(1)), () => (b.grad!.view(-1).narrow(0, 1, 2).fill_(-2), a.grad!.zero_()), () => undefined];
    xs.forEach((x, k) => {
      a.add(b).mul(x).sum().backward();
      snap('pass');
      edits[k]();
      snap('edit');
    });
  },
  shared_leaf_views_inplace({ w, xs }, snap) {
    xs.forEach((x, k) => {
      let t = w.transpose(0, 1).mul(w.reshape(3, 2)).permute(1, 0);
      t = t.add(w.flatten().view(2, 3)).add(w.unsqueeze(0).expand(2, 2, 3).sum(0));
      const out = t.mul(x);
      out.mul_(w.narrow(1, 0, 1));
      out.sum().backward();
      snap('pass');
      if (k === 0) {
        w.grad!.view(-1).narrow(0, 1, 3).mul_(-1);
        snap('edit');
      }
    });
  },
  slices_with_steps_retain_graph({ l, m, xs }, snap) {
    xs.forEach((x, k) => {
      const a = l.slice(0, 0, 5, 2);
      const b = l.narrow(0, 1, 3);
      const c = l.narrow(1, 0, 1).narrow(0, 2, 3);
      const out = a.mul(b).add(c).add(m.expand(3, 4)).mul(x);
      const loss = out.mul(out).sum();
      if (k === xs.length - 1) {
        loss.backward(undefined, { retainGraph: true });
        snap('pass, first backward');
        loss.backward();
        snap('pass, second backward');
      } else {
        loss.backward();
        snap('pass');
      }
    });
  },
  seed_through_views({ a, q, s1, s2 }, snap) {
    a.reshape(4).add(q.flatten()).backward(s1);
    s1.mul_(10);
    snap('pass');
    a.unsqueeze(0).add(q.unsqueeze(0)).backward(s2);
    s2.zero_();
    snap('pass');
  },
  two_losses_micro_batches({ W, bias, xs }, snap) {
    for (const x of xs) {
      const out = x.matmul(W.transpose(0, 1)).add(bias);
      out.mul(out).mean().backward(undefined, { retainGraph: true });
      snap('first loss');
      out
        .sum(0)
        .mul(tensor([1, -2], { device: x.device }))
        .sum()
        .backward();
      snap('second loss');
    }
  },
};

interface Encoded {
  shape: number[];
  data: number[];
}
interface FixtureProgram {
  seed: number;
  program: Program;
  snapshots: { label: string; grads: (number[] | null)[] }[];
}
interface FixtureCase {
  inputs: Record<string, Encoded | Encoded[]>;
  leaves: string[];
  snapshots: { label: string; grads: Record<string, number[] | null> }[];
}

describe('gradient accumulation', () => {
  const { cases: fx, programs } = fixture<{ cases: Record<string, FixtureCase>; programs: FixtureProgram[] }>('accumulation.json');

  it('the PyTorch fixture programs are what the generator makes from their seeds (else rerun gen_accumulation.py)', () => {
    expect(programs.length).to.be.greaterThan(0);
    for (const { seed, program } of programs) expect(program, `seed ${seed}`).to.deep.equal(genProgram(seed));
  });

  for (const device of testDevices()) {
    describe(device, () => {
      it('the PyTorch fixtures are the cases run here', () => {
        expect(Object.keys(fx).sort()).to.deep.equal(Object.keys(CASES).sort());
      });
      for (const [name, c] of Object.entries(fx)) {
        it(`PyTorch fixture ${name}: .grad after every backward and edit`, () => {
          tidy(() => {
            const make = (e: Encoded, leaf: boolean) => tensor(e.data, { shape: e.shape, device, requiresGrad: leaf });
            const inputs = Object.fromEntries(
              Object.entries(c.inputs).map(([k, v]) => [k, Array.isArray(v) ? v.map((e) => make(e, false)) : make(v, c.leaves.includes(k))]),
            ) as Inputs;
            let n = 0;
            CASES[name](inputs, (label) => {
              const want = c.snapshots[n];
              expect(label, `step ${n}`).to.equal(want.label);
              for (const k of c.leaves) {
                const g = inputs[k].grad;
                const what = `${k}.grad after step ${n} (${label})`;
                if (want.grads[k] === null) expect(g, what).to.equal(null);
                else expectClose(g!, want.grads[k]!, 1e-4, 1e-4, what);
              }
              n++;
            });
            expect(n, 'steps taken').to.equal(c.snapshots.length);
          });
        });
      }
      for (const { seed, program: p, snapshots } of programs) {
        it(`PyTorch fixture: the property test's program ${seed}, .grad after every pass and its edits`, () => {
          tidy(() => {
            const leaves = p.leaves.map((l) => tensor(l.data, { shape: l.shape, device, requiresGrad: true }));
            const check = (n: number, label: string) => {
              expect(snapshots[n].label).to.equal(label);
              leaves.forEach((leaf, i) => {
                const want = snapshots[n].grads[i];
                const what = `leaf ${i} after ${label}`;
                if (want === null) expect(leaf.grad, what).to.equal(null);
                else expectClose(leaf.grad!, want, 1e-4, 1e-4, what);
              });
            };
            p.passes.forEach((pass, k) => {
              runPass(p, pass, leaves, device);
              check(2 * k, `pass ${k}`);
              for (const e of pass.edits) editGrad(leaves[e.leaf], e);
              check(2 * k + 1, `edits of pass ${k}`);
            });
            expect(snapshots.length).to.equal(2 * p.passes.length);
          });
        });
      }
      it('a gradient a rule made fresh becomes .grad without a copy (linear and conv2d weights, a bias)', () => {
        // the copy is a pass over every weight per training step; only shared or foreign memory needs it
        let copies = 0;
        const clone = Tensor.prototype.clone;
        Tensor.prototype.clone = function (this: Tensor) {
          copies++;
          return clone.call(this);
        };
        try {
          tidy(() => {
            const W = tensor(
              [
                [1, 2, 3],
                [4, 5, 6],
              ],
              { device, requiresGrad: true },
            );
            const b = tensor([1, 2], { device, requiresGrad: true });
            const cw = tensor(
              Array.from({ length: 18 }, (_, i) => i / 10),
              { shape: [2, 1, 3, 3], device, requiresGrad: true },
            );
            const img = tensor(
              Array.from({ length: 25 }, (_, i) => i / 7),
              { shape: [1, 1, 5, 5], device },
            );
            tensor(
              [
                [1, 0, 1],
                [2, 1, 0],
              ],
              { device },
            )
              .matmul(W.transpose(0, 1))
              .add(b)
              .square()
              .sum()
              .backward();
            ops.conv2d(img, cw).square().sum().backward();
            expect(copies).to.equal(0);
            expectClose(b.grad!, [2 * (5 + 5), 2 * (12 + 15)]); // out rows [5, 12], [5, 15]
          });
        } finally {
          Tensor.prototype.clone = clone;
        }
      });
      it('random programs of views, shape ops, shared leaves and in-place ops: .grad equals the summed finite differences, with .grad edited between passes', () => {
        // the accumulation is device-independent bookkeeping: many runs on the default device, a few on the
        // others (each new shape compiles kernels there, slowly on gpu)
        const runs = device === getDefaultDevice() ? 200 : 10;
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 2 ** 30 }), (seed) => checkProgram(genProgram(seed), device)),
          { numRuns: runs, seed: SEED },
        );
      });
    });
  }
});
