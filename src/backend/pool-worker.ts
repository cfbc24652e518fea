/**
 * The body of a worker thread of the pool (worker-pool.ts): compiles and runs parts of split kernels.
 *
 * It is not loaded from a file at run time: `npm run build` bundles this module with everything it imports
 * (gpu.js included) into one self-contained script (scripts/build-worker.js writes it, as a string, to
 * dist/src/backend/pool-worker-script.js), which the pool starts with `eval: true`. So a program bundled
 * for Node (esbuild, webpack...) carries the workers' code inside the bundle, and a worker never resolves
 * a module path at run time (which, in a bundle, would find nothing, or whatever lies in the directory it
 * happens to run from).
 */
import { workerData } from 'worker_threads';
import { DONE, RUNNING, STATUS } from './pool-control';
import { KernelCache, releaseHostKernel } from './kernel-cache';
import { copyInto, flatWasmOutput, unpackRows4Into } from './kernel-output';
import { codegenGpu } from './wasm-codegen';
import { setBackendOptions } from '../platform/options';

/** What the pool hands a worker (see WorkerPool.worker). */
export interface PoolWorkerData {
  mode: string;
  kernelCache: number;
  port: import('worker_threads').MessagePort;
  /** held for the thread's lifetime: its channel closing tells the watchdog this thread has ended */
  life: import('worker_threads').MessagePort;
  ctrl: SharedArrayBuffer;
}

function run(data: PoolWorkerData): void {
  const { port } = data;
  const ctrl = new Int32Array(data.ctrl);
  let gpu: any;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const gpujs = require('gpu.js');
    gpu = codegenGpu(gpujs, data.mode);
  } catch (e: any) {
    port.postMessage({ id: 0, error: String((e && e.stack) || e) });
    throw e;
  }
  const kernels = new KernelCache<any>(data.kernelCache, (k) => releaseHostKernel(gpu, k));
  port.on('message', (m: any) => {
    let error: string | null = null;
    try {
      if (m.fault === 'throw') throw new Error('injected fault (test hook)');
      if (m.fault === 'exit') process.exit(1);
      let k = kernels.get(m.key);
      // the calling thread's setBackendOptions({ wasmCodegen, kernelCacheDir }) applies to the parts compiled here too
      setBackendOptions({ wasmCodegen: m.wasmCodegen, kernelCacheDir: m.kernelCacheDir });
      // gpu.js compiles a kernel on its first call: that call belongs to the start phase, not the run
      if (k) Atomics.store(ctrl, RUNNING, m.id);
      else {
        k = gpu.createKernel(m.source, m.settings);
        flatWasmOutput(k);
        kernels.set(m.key, k);
      }
      if (m.fault === 'hang' || m.fault === 'terminate') {
        Atomics.store(ctrl, RUNNING, m.id);
        for (;;);
      }
      const out = k(...m.args, ...m.scalars);
      const dst = new Float32Array(m.dst);
      if (m.rows4) unpackRows4Into(out, m.grid, dst, m.offset, m.size);
      else copyInto(out, dst, m.offset, m.size);
    } catch (e: any) {
      error = String((e && e.stack) || e);
      port.postMessage({ id: m.id, error });
    }
    Atomics.store(ctrl, STATUS, error === null ? 1 : 2);
    Atomics.store(ctrl, DONE, m.id);
    Atomics.notify(ctrl, DONE);
  });
}

if (workerData && (workerData as { tsnnPoolWorker?: boolean }).tsnnPoolWorker) run(workerData as PoolWorkerData);
