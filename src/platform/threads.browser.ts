/**
 * Kernel worker threads in a page: Web Workers sharing memory with the page (SharedArrayBuffer), which a
 * browser allows only in a cross-origin-isolated page (served with COOP `same-origin` and COEP
 * `require-corp`); anywhere else kernels run on one thread. Same protocol as Node's worker-pool.ts: the
 * calling thread posts parts, runs its own, then waits until every posted part is settled; each worker
 * writes the id of the job it finished into its control block (and an error's text, since a page cannot
 * read a port synchronously).
 *
 * The workers run this very module: the browser bundle (dist/browser/tsnn.mjs) started as a module worker
 * named WORKER_NAME installs the job handler below instead of doing nothing. Its URL is the bundle's own
 * (import.meta.url, kept by scripts/build-browser.js) or setBackendOptions({ workerUrl }).
 *
 * Differences a page imposes: a page's main thread may not block (Atomics.wait throws there), so it spins on
 * the control block (a worker calling tsnn waits normally); and a page starts a Web Worker only once its main
 * thread yields to the event loop, so a worker that is not ready yet takes no part (post returns null and the
 * calling thread runs that part itself). A worker that dies cannot be seen while the page spins: it shows as
 * a part that does not finish (the same hang limits as Node), and is then terminated and replaced.
 */
import type { KernelWorkerPool, PartJob } from '../backend/worker-pool';
import { JobPool, SLICE_MS } from '../backend/job-pool';
import type { PendingJob } from '../backend/job-pool';
import { DONE, RUNNING, STATUS } from '../backend/pool-control';
import type { WorkerFault } from '../backend/kernel-faults';
import { KernelCache, releaseHostKernel } from '../backend/kernel-cache';
import { copyInto, flatWasmOutput, unpackRows4Into } from '../backend/kernel-output';
import { codegenGpu, codegenOn } from '../backend/wasm-codegen';
import { option, setBackendOptions } from './options';

/** The bundle's own URL (set by the banner scripts/build-browser.js adds; absent outside that bundle). */
declare const __tsnn_bundle_url: string | undefined;

export const WORKER_NAME = 'tsnn-kernel-worker';

/** Control block: DONE, STATUS and RUNNING as in Node's (pool-control.ts), READY, then an error text (UTF-16 code units) from ERROR_AT. */
const READY = 3; // 1 once the worker has set up gpu.js
const ERROR_LENGTH = 4;
const ERROR_AT = 32; // bytes
const CTRL_BYTES = 2048;
const ERROR_CHARS = (CTRL_BYTES - ERROR_AT) / 2;

/** Cores here (navigator.hardwareConcurrency). */
export function cpuCount(): number {
  const n = (globalThis as any).navigator?.hardwareConcurrency;
  return typeof n === 'number' && n >= 1 ? n : 1;
}

function bundleUrl(): string | undefined {
  const url = typeof __tsnn_bundle_url === 'string' ? __tsnn_bundle_url : undefined;
  // only our own file: an application bundle that inlined tsnn must not be started as a worker (workerUrl)
  return url && /\/tsnn\.m?js(\?.*)?$/.test(url) ? url : undefined;
}

function isKernelWorker(): boolean {
  return typeof (globalThis as any).WorkerGlobalScope !== 'undefined' && (globalThis as any).name === WORKER_NAME;
}

/** Why kernels cannot be split over threads here, or null when they can. */
export function threadsUnavailable(): string | null {
  const g = globalThis as any;
  if (typeof SharedArrayBuffer === 'undefined' || g.crossOriginIsolated === false)
    return 'the page is not cross-origin isolated (COOP/COEP headers), so it has no SharedArrayBuffer';
  if (typeof g.Worker !== 'function') return 'this context has no Web Workers';
  if (isKernelWorker()) return 'this is a kernel worker';
  if (!(option('workerUrl') ?? bundleUrl())) return "the URL of tsnn's module is not known here: setBackendOptions({ workerUrl })";
  return null;
}

export function createWorkerPool(mode: string, kernelCache: number): KernelWorkerPool {
  return new WebWorkerPool(mode, kernelCache);
}

interface PoolWorker {
  worker: any;
  ctrl: Int32Array;
  failed: string | null;
}

/** Waits on a control slot: Atomics.wait where this thread may block, else a spin (a page's main thread). */
let mayBlock: boolean | null = null;
function waitChange(c: Int32Array, slot: number, value: number, ms: number): void {
  if (mayBlock !== false) {
    try {
      Atomics.wait(c, slot, value, ms);
      mayBlock = true;
      return;
    } catch {
      mayBlock = false;
    }
  }
  const end = performance.now() + ms;
  while (Atomics.load(c, slot) === value && performance.now() < end);
}

function errorText(c: Int32Array): string {
  const chars = new Uint16Array(c.buffer, ERROR_AT, ERROR_CHARS);
  const n = Math.min(Atomics.load(c, ERROR_LENGTH), ERROR_CHARS);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(chars[i]);
  return s;
}

class WebWorkerPool extends JobPool<PoolWorker> implements KernelWorkerPool {
  constructor(
    private readonly mode: string,
    private readonly kernelCache: number,
  ) {
    super();
  }

  post(slot: number, job: PartJob, fault?: WorkerFault): PendingJob | null {
    const w = this.worker(slot);
    if (!w || Atomics.load(w.ctrl, READY) !== 1) return null;
    const id = this.nextId();
    w.worker.postMessage({ id, ...job, dst: job.dst.buffer, fault, wasmCodegen: codegenOn() });
    return { slot, id, postedAt: performance.now(), fault };
  }

  protected errorOf(w: PoolWorker): string | null {
    return errorText(w.ctrl) || null;
  }

  /** A page cannot see a worker die while it spins: a dead worker shows as a part that does not finish. */
  protected deathOf(): null {
    return null;
  }

  protected hangWhy(ms: number): string {
    return `hung or died (part still unfinished ${Math.round(ms)} ms after the calling thread's own)`;
  }

  protected waitForChange(c: Int32Array, done: number): void {
    waitChange(c, DONE, done, SLICE_MS);
  }

  protected terminate(w: PoolWorker): void {
    w.worker.terminate();
  }

  /** Worker `slot`, started on first use; null if it could not be created. */
  private worker(slot: number): PoolWorker | null {
    const w = this.slots[slot];
    if (w) return w.failed ? null : w;
    const url = option('workerUrl') ?? bundleUrl();
    if (!url) return null;
    const ctrl = new Int32Array(new SharedArrayBuffer(CTRL_BYTES));
    let worker: any;
    try {
      worker = new (globalThis as any).Worker(url, { type: 'module', name: WORKER_NAME });
    } catch {
      return null;
    }
    const made: PoolWorker = { worker, ctrl, failed: null };
    // seen only when the page's event loop turns: the worker then never becomes ready, and takes no part
    worker.addEventListener('error', (e: any) => {
      made.failed = String(e?.message ?? 'worker error');
    });
    worker.postMessage({ init: { ctrl: ctrl.buffer, mode: this.mode, kernelCache: this.kernelCache } });
    this.slots[slot] = made;
    return made;
  }
}

/** The worker side: runs parts posted by WebWorkerPool, with its own synchronous gpu.js kernels. */
function serveKernelJobs(): void {
  const g = globalThis as any;
  let ctrl: Int32Array | null = null;
  let gpu: any = null;
  let kernels: KernelCache<any> | null = null;
  const fail = (c: Int32Array, text: string) => {
    const chars = new Uint16Array(c.buffer, ERROR_AT, ERROR_CHARS);
    const n = Math.min(text.length, ERROR_CHARS);
    for (let i = 0; i < n; i++) chars[i] = text.charCodeAt(i);
    Atomics.store(c, ERROR_LENGTH, n);
  };
  g.addEventListener('message', (e: any) => {
    const m = e.data;
    if (m.init) {
      ctrl = new Int32Array(m.init.ctrl);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const gpujs = require('gpu.js');
      gpu = codegenGpu(gpujs, m.init.mode);
      kernels = new KernelCache<any>(m.init.kernelCache, (k) => releaseHostKernel(gpu, k));
      Atomics.store(ctrl, READY, 1);
      return;
    }
    const c = ctrl!;
    if (m.fault === 'exit') {
      g.close(); // the thread ends without settling the job, like process.exit in a Node worker
      return;
    }
    let ok = true;
    try {
      if (m.fault === 'throw') throw new Error('injected fault (test hook)');
      setBackendOptions({ wasmCodegen: m.wasmCodegen });
      let k = kernels!.get(m.key);
      // gpu.js compiles a kernel on its first call: that call belongs to the start phase, not the run
      if (k) Atomics.store(c, RUNNING, m.id);
      else {
        k = gpu.createKernel(m.source, m.settings);
        flatWasmOutput(k);
        kernels!.set(m.key, k);
      }
      if (m.fault === 'hang' || m.fault === 'terminate') {
        Atomics.store(c, RUNNING, m.id);
        for (;;);
      }
      const out = k(...m.args, ...m.scalars);
      const dst = new Float32Array(m.dst);
      if (m.rows4) unpackRows4Into(out, m.grid, dst, m.offset, m.size);
      else copyInto(out, dst, m.offset, m.size);
    } catch (err) {
      ok = false;
      fail(c, String((err as Error)?.stack ?? err).split('\n')[0]);
    }
    Atomics.store(c, STATUS, ok ? 1 : 2);
    Atomics.store(c, DONE, m.id);
    Atomics.notify(c, DONE);
  });
}

if (isKernelWorker()) serveKernelJobs();
