/**
 * Whether splitting a kernel over worker threads pays, learned per kernel from its own run times.
 *
 * On an idle machine a 2-way split runs the big matmuls 1.6-1.9x faster; on a machine whose other cores
 * are busy (a shared VM, another process) the workers' parts finish late and the split is slower than
 * running the whole kernel on the calling thread. So each kernel starts split; after a warm-up (V8 tiers
 * wasm up only after some calls, in every thread) it is also run whole now and then, and from then on the
 * mode with the lower recent median wins. Every PROBE_EVERY-th run tries the other mode, so a policy
 * follows the machine's load as it changes. Results do not depend on the mode (parts compute the same
 * cells: test/perf/matmul-variants.test.ts), only timings do.
 */
export type SplitMode = 'split' | 'whole';

/** Runs per kernel before the policy compares modes (both modes need their code tiered up). */
export const WARM_RUNS = 24;
/** Once warm, every this many runs one goes to the mode not currently preferred. */
export const PROBE_EVERY = 8;
/** Recent samples kept per kernel and mode. */
const WINDOW = 5;

interface KernelTimes {
  runs: number;
  split: number[];
  whole: number[];
}

export class SplitPolicy {
  private readonly kernels = new Map<string, KernelTimes>();
  readonly stats = { split: 0, whole: 0 };

  /** The mode for this run of kernel `key`. */
  choose(key: string): SplitMode {
    const k = this.entry(key);
    k.runs++;
    let mode: SplitMode;
    if (k.runs <= WARM_RUNS) {
      // warm-up: mostly split (the default), whole every 4th run from halfway so both modes have samples
      mode = k.runs > WARM_RUNS / 2 && k.runs % 4 === 0 ? 'whole' : 'split';
    } else {
      const preferred: SplitMode = median(k.whole) < median(k.split) ? 'whole' : 'split';
      mode = k.runs % PROBE_EVERY === 0 ? other(preferred) : preferred;
    }
    this.stats[mode]++;
    return mode;
  }

  /** Reports how long run `mode` of kernel `key` took (ms). */
  record(key: string, mode: SplitMode, ms: number): void {
    const k = this.entry(key);
    // the first runs of each mode include compilation and unoptimised wasm: not samples
    if (k.runs <= WARM_RUNS / 2) return;
    const list = k[mode];
    list.push(ms);
    if (list.length > WINDOW) list.shift();
  }

  private entry(key: string): KernelTimes {
    let k = this.kernels.get(key);
    if (!k) {
      k = { runs: 0, split: [], whole: [] };
      this.kernels.set(key, k);
    }
    return k;
  }
}

const other = (m: SplitMode): SplitMode => (m === 'split' ? 'whole' : 'split');

function median(xs: number[]): number {
  if (xs.length === 0) return Infinity;
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
