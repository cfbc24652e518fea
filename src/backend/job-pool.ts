/**
 * What the two kernel-thread pools share — Node's worker threads (worker-pool.ts) and a page's Web Workers
 * (platform/threads.browser.ts): job ids, the wait until every posted part is settled, the hang and start-up
 * limits, and retiring a worker that failed so the next job on its slot starts a fresh one. A subclass says
 * how a worker starts, how a job reaches it, how its death and its errors show, and how this thread waits.
 *
 * Every job has its own id; the worker writes the id of the job it finished into its control block
 * (pool-control.ts), so a reply is matched to its job by id, never by order, and a late reply of an abandoned
 * job can never be taken for the current one.
 */
import type { WorkerFault } from './kernel-faults';
import { DONE, RUNNING, STATUS } from './pool-control';

/**
 * A running part is deemed hung once it has run HANG_FACTOR times as long as the calling thread's own part
 * (parts are equal shares of one kernel) after the calling thread finished that part, and at least
 * HANG_FLOOR_MS: generous, because on a loaded machine a worker may get a fraction of a core.
 */
export const HANG_FACTOR = 20;
export const HANG_FLOOR_MS = 1000;
/** A worker that has not started running a job's (compiled) kernel this long after the job was posted, or
 *  finished it if the kernel is new to it (its own start-up, loading gpu.js, compiling), is deemed stuck. */
export const START_LIMIT_MS = 30_000;
/** Longest single wait: between waits the deadlines are checked (a missed wake-up costs at most this). */
export const SLICE_MS = 20;

/** A posted job. */
export interface PendingJob {
  slot: number;
  id: number;
  postedAt: number;
  fault?: WorkerFault;
  terminated?: boolean;
}

/** Why a job failed, and whether its worker never got as far as starting up. */
export interface JobFailure {
  slot: number;
  why: string;
  startup: boolean;
}

export abstract class JobPool<W extends { ctrl: Int32Array }> {
  protected readonly slots: (W | null)[] = [];
  private lastId = 0;

  /** A fresh job id (never 0, which the control block holds before any job). */
  protected nextId(): number {
    this.lastId = this.lastId >= 0x3fffffff ? 1 : this.lastId + 1;
    return this.lastId;
  }

  /**
   * Blocks until every job in `pending` is settled: done, failed, or its worker dead or hung (then
   * terminated and replaced). Waits for all of them even after a failure, so no part is left running to
   * write into memory later. `mainMs`: how long the calling thread took for its own part.
   */
  waitAll(pending: PendingJob[], mainMs: number): JobFailure[] {
    const waitStart = performance.now();
    const hangMs = Math.max(HANG_FLOOR_MS, HANG_FACTOR * mainMs);
    const failures: JobFailure[] = [];
    for (const job of pending) {
      const failure = this.settle(job, waitStart, hangMs);
      if (!failure) continue;
      this.retire(job.slot);
      failures.push(failure);
    }
    return failures;
  }

  destroy(): void {
    for (let k = 0; k < this.slots.length; k++) this.retire(k);
  }

  private settle(job: PendingJob, waitStart: number, hangMs: number): JobFailure | null {
    const w = this.slots[job.slot];
    if (!w) return { slot: job.slot, why: 'was shut down', startup: false };
    const c = w.ctrl;
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (done === job.id) {
        if (Atomics.load(c, STATUS) === 1) return null;
        return { slot: job.slot, why: `threw: ${this.errorOf(w, job.id) || 'no message'}`, startup: false };
      }
      const dead = this.deathOf(w);
      if (dead) return { slot: job.slot, ...dead };
      const running = Atomics.load(c, RUNNING) === job.id;
      if (running && job.fault === 'terminate' && !job.terminated) {
        job.terminated = true; // test hook (kernel-faults.ts): the calling thread kills the worker mid-kernel
        this.terminate(w);
      }
      const now = performance.now();
      if (running && now - waitStart > hangMs) return { slot: job.slot, why: this.hangWhy(now - waitStart, hangMs), startup: false };
      if (!running && now - job.postedAt > START_LIMIT_MS)
        return { slot: job.slot, why: `did not start the kernel within ${START_LIMIT_MS / 1000} s`, startup: false };
      this.waitForChange(c, done);
    }
  }

  /** Terminates worker `slot` (dead, broken or hung): the next job on the slot starts a fresh one. */
  private retire(slot: number): void {
    const w = this.slots[slot];
    if (!w) return;
    this.slots[slot] = null;
    this.terminate(w);
    this.retired(w);
  }

  /** Clean-up after a worker was retired (its port, say). */
  protected retired(_w: W): void {}

  /** The error text a worker left for job `id`, if any. */
  protected abstract errorOf(w: W, id: number): string | null;
  /** Why the worker is known to be dead (its thread ended), or null where it is not (or cannot be told). */
  protected abstract deathOf(w: W): { why: string; startup: boolean } | null;
  protected abstract terminate(w: W): void;
  /** Why a part that ran past the hang limit failed (`ms` since the calling thread finished its own part). */
  protected abstract hangWhy(ms: number, hangMs: number): string;
  /** Waits up to SLICE_MS for the control block's DONE slot to leave `done`. */
  protected abstract waitForChange(c: Int32Array, done: number): void;
}
