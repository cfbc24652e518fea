/**
 * Worker threads that run parts of split kernels (kernel-threads.ts) behind a synchronous API: the calling
 * thread posts jobs, runs its own part, then blocks on Atomics.wait until every job it posted is settled.
 *
 * Each worker shares a small control block (Int32 slots of a SharedArrayBuffer) with the calling thread.
 * Every job has its own id; the worker writes the id of the job it finished, and an error travels on the
 * port tagged with its job's id, so a reply is matched to its job by id, never by order, and a late reply
 * of an abandoned job can never be taken for the current one.
 *
 * A blocked calling thread cannot see a worker's 'exit' event (events need its event loop), so a small
 * watchdog thread, whose own event loop keeps running, holds one end of a channel per worker whose other
 * end lives in that worker: when the worker's thread ends (exit, uncaught error, terminate()), the channel
 * closes, and the watchdog flags the control block and wakes the waiter. A hang cannot be seen that way:
 * a part that runs far longer than the calling thread's own (equal) share is deemed hung (HANG_FACTOR,
 * HANG_FLOOR_MS). A worker that died, threw or hung is terminated and replaced; the op fails.
 */
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'worker_threads';
import type { WorkerFault } from './kernel-faults';
import { DEAD, DONE, SLOTS } from './pool-control';
import { HANG_FACTOR, JobPool, SLICE_MS } from './job-pool';
import type { JobFailure, PendingJob } from './job-pool';
import type { PoolWorkerData } from './pool-worker';
import { codegenOn } from './wasm-codegen';
import { option } from '../platform/options';

export { HANG_FACTOR, HANG_FLOOR_MS, START_LIMIT_MS } from './job-pool';
export type { JobFailure, PendingJob } from './job-pool';

/** What a worker needs to run one part. */
export interface PartJob {
  /** cache key of the compiled part (source, grid, argument sizes, part base) */
  key: string;
  source: string;
  settings: object;
  args: Float32Array[];
  scalars: number[];
  dst: Float32Array;
  rows4: boolean;
  grid: number[];
  offset: number;
  size: number;
}

/**
 * What the Backend needs of a pool of kernel threads (platform/threads.ts makes one per platform).
 * `post` returns null when that worker cannot take the part yet (a Web Worker still starting: a page starts
 * workers only once its main thread yields): the caller runs the part itself.
 */
export interface KernelWorkerPool {
  post(slot: number, job: PartJob, fault?: WorkerFault): PendingJob | null;
  waitAll(pending: PendingJob[], mainMs: number): JobFailure[];
  destroy(): void;
}

interface PoolWorker {
  worker: Worker;
  port: MessagePort;
  ctrl: Int32Array;
}

// not exported: its protected hooks name worker_threads types, which the package's declarations must not
class WorkerPool extends JobPool<PoolWorker> implements KernelWorkerPool {
  private watchdog: Worker | null = null;

  constructor(
    private readonly mode: string,
    /** compiled kernels each worker keeps (kernel-cache.ts) */
    private readonly kernelCache: number,
  ) {
    super();
  }

  /** Posts a part to worker `slot` (started, or restarted after a failure, on demand). */
  post(slot: number, job: PartJob, fault?: WorkerFault): PendingJob {
    const w = this.worker(slot);
    const id = this.nextId();
    w.port.postMessage({ id, ...job, dst: job.dst.buffer, fault, wasmCodegen: codegenOn(), kernelCacheDir: option('kernelCacheDir') });
    return { slot, id, postedAt: performance.now(), fault };
  }

  destroy(): void {
    super.destroy();
    void this.watchdog?.terminate();
    this.watchdog = null;
  }

  protected deathOf(w: PoolWorker): { why: string; startup: boolean } | null {
    if (Atomics.load(w.ctrl, DEAD) !== 1) return null;
    const startup = this.errorOf(w, 0);
    return {
      why: startup ? `failed to start: ${startup}` : 'died (its thread ended: exited, crashed or was terminated)',
      startup: startup !== null,
    };
  }

  protected hangWhy(ms: number, hangMs: number): string {
    return `hung (still running ${Math.round(ms)} ms after the calling thread finished its own part in ${Math.round(hangMs / HANG_FACTOR)} ms)`;
  }

  protected waitForChange(c: Int32Array, done: number): void {
    Atomics.wait(c, DONE, done, SLICE_MS);
  }

  protected terminate(w: PoolWorker): void {
    void w.worker.terminate();
  }

  protected retired(w: PoolWorker): void {
    w.port.close();
  }

  /** The error a worker posted for job `id` (0: its start-up), dropping older messages. */
  protected errorOf(w: PoolWorker, id: number): string | null {
    for (let m = receiveMessageOnPort(w.port); m; m = receiveMessageOnPort(w.port)) {
      const msg = m.message as { id: number; error: string };
      if (msg.id === id) return msg.error.split('\n')[0];
    }
    return null;
  }

  private worker(slot: number): PoolWorker {
    let w = this.slots[slot];
    if (w) return w;
    const jobs = new MessageChannel();
    // the worker holds one end for its lifetime; the watchdog sees the other end close when the thread ends
    const life = new MessageChannel();
    const ctrl = new Int32Array(new SharedArrayBuffer(SLOTS * 4));
    const workerData: PoolWorkerData & { tsnnPoolWorker: true } = {
      tsnnPoolWorker: true,
      mode: this.mode,
      kernelCache: this.kernelCache,
      port: jobs.port2,
      life: life.port1,
      ctrl: ctrl.buffer as SharedArrayBuffer,
    };
    const worker = new Worker(poolWorkerScript(), { eval: true, workerData, transferList: [jobs.port2, life.port1] });
    // a start-up error also reaches the port (see settle); without a listener it would crash the process
    worker.on('error', () => undefined);
    worker.unref();
    jobs.port1.unref();
    this.watchdogThread().postMessage({ life: life.port2, ctrl: ctrl.buffer }, [life.port2]);
    w = { worker, port: jobs.port1, ctrl };
    this.slots[slot] = w;
    return w;
  }

  private watchdogThread(): Worker {
    if (!this.watchdog) {
      this.watchdog = new Worker(WATCHDOG_SOURCE, { eval: true });
      this.watchdog.on('error', () => undefined);
      this.watchdog.unref();
    }
    return this.watchdog;
  }
}

const WATCHDOG_SOURCE = `
const { parentPort } = require('worker_threads');
parentPort.on('message', ({ life, ctrl }) => {
  const c = new Int32Array(ctrl);
  life.on('close', () => {
    Atomics.store(c, ${DEAD}, 1);
    Atomics.notify(c, ${DONE});
  });
});
`;

/**
 * The workers' code: pool-worker.ts bundled with gpu.js and all it imports into one script at build time
 * (scripts/build-worker.js), so that nothing is resolved from disk when a worker starts (see pool-worker.ts).
 * A literal require, so that bundlers of programs using tsnn carry it along.
 */
function poolWorkerScript(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('./pool-worker-script').POOL_WORKER_SCRIPT;
  } catch (e) {
    throw new Error(
      `tsnn: the worker-thread script is not built (dist/src/backend/pool-worker-script.js; \`npm run build\` makes it): ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Node's pool of kernel worker threads (platform/threads.ts makes one). */
export function createNodeWorkerPool(mode: string, kernelCache: number): KernelWorkerPool {
  return new WorkerPool(mode, kernelCache);
}
