/**
 * Kernel worker threads in Node: worker_threads (backend/worker-pool.ts). The browser build swaps in
 * threads.browser.ts (Web Workers in a cross-origin-isolated page, one thread otherwise).
 */
import * as os from 'os';
import { createNodeWorkerPool } from '../backend/worker-pool';
import type { KernelWorkerPool } from '../backend/worker-pool';

/** Cores here. */
export function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Why kernels cannot be split over threads here, or null when they can. */
export function threadsUnavailable(): string | null {
  return typeof SharedArrayBuffer === 'undefined' ? 'SharedArrayBuffer is not available' : null;
}

/** A pool of kernel worker threads for a gpu.js mode, each keeping `kernelCache` compiled kernels. */
export function createWorkerPool(mode: string, kernelCache: number): KernelWorkerPool {
  return createNodeWorkerPool(mode, kernelCache);
}
