/** The per-kernel split-or-whole choice (src/backend/split-policy.ts), driven by synthetic run times. */
import { expect } from 'chai';
import { PROBE_EVERY, SplitMode, SplitPolicy, WARM_RUNS } from '../../src/backend/split-policy';

/** Runs `n` calls of one kernel whose modes take `times` ms; returns the modes chosen. */
function drive(policy: SplitPolicy, n: number, times: Record<SplitMode, number>): SplitMode[] {
  const modes: SplitMode[] = [];
  for (let i = 0; i < n; i++) {
    const mode = policy.choose('k');
    policy.record('k', mode, times[mode]);
    modes.push(mode);
  }
  return modes;
}
const count = (modes: SplitMode[], m: SplitMode) => modes.filter((x) => x === m).length;

describe('backend: split policy', () => {
  it('splits during warm-up, with some whole runs to compare', () => {
    const modes = drive(new SplitPolicy(), WARM_RUNS, { split: 5, whole: 9 });
    expect(modes.slice(0, WARM_RUNS / 2).every((m) => m === 'split')).to.equal(true);
    expect(count(modes, 'whole')).to.be.greaterThan(0);
    expect(count(modes, 'split')).to.be.greaterThan(count(modes, 'whole'));
  });

  it('keeps splitting where the split is faster, probing the whole kernel now and then', () => {
    const p = new SplitPolicy();
    drive(p, WARM_RUNS, { split: 5, whole: 9 });
    const modes = drive(p, 10 * PROBE_EVERY, { split: 5, whole: 9 });
    expect(count(modes, 'whole')).to.equal(10);
  });

  it('runs the kernel whole where splitting is slower (busy cores), and follows a change of load', () => {
    const p = new SplitPolicy();
    drive(p, WARM_RUNS, { split: 12, whole: 9 });
    const busy = drive(p, 10 * PROBE_EVERY, { split: 12, whole: 9 });
    expect(count(busy, 'split')).to.equal(10);
    // the other core frees up: the probes see the faster split and the policy switches back
    const idle = drive(p, 10 * PROBE_EVERY, { split: 5, whole: 9 });
    expect(count(idle.slice(-5 * PROBE_EVERY), 'split')).to.be.greaterThan(4 * PROBE_EVERY);
  });

  it('keeps separate choices per kernel', () => {
    const p = new SplitPolicy();
    for (let i = 0; i < WARM_RUNS + 4 * PROBE_EVERY; i++) {
      for (const [key, t] of [
        ['a', { split: 5, whole: 9 }],
        ['b', { split: 12, whole: 9 }],
      ] as const) {
        const mode = p.choose(key);
        p.record(key, mode, t[mode]);
      }
    }
    expect(p.choose('a')).to.equal('split');
    expect(p.choose('b')).to.equal('whole');
  });
});
