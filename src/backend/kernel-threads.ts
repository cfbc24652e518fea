/**
 * Running one kernel on several threads behind the synchronous API. gpu.js threads webasm kernels only
 * under its asynchronous contract, so a large kernel (threads x inner loop >= SPLIT_WORK) is split here:
 * along the outermost axis of its thread grid into one part per thread; worker_threads each run a part
 * with their own synchronous gpu.js kernel while the calling thread runs the first, then the caller
 * blocks on Atomics.wait until the workers are done (Node allows that on the main thread). Parts write
 * straight into one SharedArrayBuffer output, and inputs move to shared memory once (buffers are
 * immutable), so nothing is copied per call. TSNN_THREADS=1 turns this off.
 */
import * as os from 'os';
import { MessageChannel, MessagePort, Worker, receiveMessageOnPort } from 'worker_threads';
import type { DeviceBuffer, Handle, KernelSpec } from './gpujs-backend';
import { copyInto, flatWasmOutput, flatten, kernelSettings, unpackRows4Into } from './kernel-output';
import { KernelCache, releaseHostKernel } from './kernel-cache';

/** Below this much work (threads x inner-loop iterations) a kernel runs on one thread: a split costs ~0.1 ms. */
export const SPLIT_WORK = 1 << 21;

export function threadCount(): number {
  const env = process.env.TSNN_THREADS;
  if (env !== undefined && env !== '') return Math.max(1, Math.floor(Number(env)) || 1);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(cores, 4));
}

/** One part of a split kernel: its source (thread ids offset), its grid, and where its cells go. */
export interface KernelPart {
  source: string;
  grid: number[];
  /** first flat output cell of this part, and how many it writes */
  offset: number;
  size: number;
}

/**
 * Splits a kernel along the outermost axis of its thread grid (z, else y; x for 1-D kernels, in
 * multiples of 4 so SIMD quads stay whole), or returns null when it is too small to be worth it.
 * Sources come from KernelBuilder, which names thread ids only as `this.thread.y/z` in grid kernels
 * and as `const i = this.thread.x;` in flat ones, so offsetting them is a textual substitution.
 */
export function splitKernel(spec: KernelSpec, threads: number): KernelPart[] | null {
  const grid = spec.grid ?? [spec.outSize];
  const cells = grid.reduce((a, b) => a * b, 1);
  if (threads < 2 || cells * Math.max(spec.work ?? spec.loopMax ?? 1, 1) < SPLIT_WORK) return null;
  const comps = spec.rows4 ? 4 : 1;
  let axis = grid.length - 1;
  while (axis > 0 && grid[axis] < 2) axis--;
  const len = grid[axis];
  const quantum = axis === 0 ? 4 : 1;
  const n = Math.min(threads, Math.floor(len / quantum));
  if (n < 2) return null;
  // cells of output per step along the axis
  const stride = grid.slice(0, axis).reduce((a, b) => a * b, 1) * comps;
  const parts: KernelPart[] = [];
  let start = 0;
  for (let p = 0; p < n; p++) {
    const end = p === n - 1 ? len : Math.round(((p + 1) * len) / n / quantum) * quantum;
    if (end <= start) continue;
    const g = [...grid];
    g[axis] = end - start;
    let source = spec.source;
    if (start > 0) {
      if (axis === 0) {
        if (spec.grid || !source.includes('const i = this.thread.x;')) return null;
        source = source.replace('const i = this.thread.x;', `const i = this.thread.x + ${start};`);
      } else {
        const id = axis === 1 ? 'this.thread.y' : 'this.thread.z';
        source = source.split(id).join(`(${id} + ${start})`);
      }
    }
    const offset = start * stride;
    if (offset >= spec.outSize) break;
    parts.push({ source, grid: g, offset, size: Math.min((end - start) * stride, spec.outSize - offset) });
    start = end;
  }
  return parts.length > 1 ? parts : null;
}

export function runPart(kernel: any, part: KernelPart, spec: KernelSpec, args: Handle[], dst: Float32Array): void {
  const out = kernel(...args, ...spec.scalars);
  if (spec.rows4) unpackRows4Into(out, part.grid, dst, part.offset, part.size);
  else copyInto(out, dst, part.offset, part.size);
}

/** Moves a host buffer into shared memory (once: buffers are immutable), so workers read it without a copy. */
export function shareBuffer(b: DeviceBuffer): Float32Array {
  const h = b.handle;
  if (!(h instanceof Float32Array)) throw new Error('internal: kernel input buffer was already released');
  if (h.buffer instanceof SharedArrayBuffer) return h;
  const shared = new Float32Array(new SharedArrayBuffer(h.length * 4));
  shared.set(h);
  b.handle = shared;
  return shared;
}

const WORKER_SOURCE = `
const { workerData } = require('worker_threads');
const gpujs = require(workerData.gpujs);
require(workerData.codegen).installWasmCodegen(gpujs);
const gpu = new gpujs.GPU({ mode: workerData.mode });
${KernelCache.toString()}
${releaseHostKernel.toString()}
const kernels = new KernelCache(workerData.kernelCache, (k) => releaseHostKernel(gpu, k));
${flatWasmOutput.toString()}
${flatten.toString()}
${unpackRows4Into.toString()}
${copyInto.toString()}
const port = workerData.port;
port.on('message', (m) => {
  const ctrl = new Int32Array(m.ctrl);
  try {
    let k = kernels.get(m.key);
    if (!k) {
      k = gpu.createKernel(m.source, m.settings);
      flatWasmOutput(k);
      kernels.set(m.key, k);
    }
    const out = k(...m.args, ...m.scalars);
    const dst = new Float32Array(m.dst);
    if (m.rows4) unpackRows4Into(out, m.grid, dst, m.offset, m.size);
    else copyInto(out, dst, m.offset, m.size);
    Atomics.store(ctrl, 0, 1);
  } catch (e) {
    port.postMessage(String((e && e.stack) || e));
    Atomics.store(ctrl, 0, 2);
  }
  Atomics.notify(ctrl, 0);
});
`;

interface Job {
  worker: number;
  ctrl: Int32Array;
}

/** Worker threads, each with its own gpu.js; jobs are posted and awaited synchronously (Atomics.wait). */
export class WorkerPool {
  private readonly workers: { worker: Worker; port: MessagePort; ctrl: Int32Array }[] = [];
  constructor(
    private readonly mode: string,
    private readonly kernelCache: number,
  ) {}

  private get(k: number) {
    while (this.workers.length <= k) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { gpujs: require.resolve('gpu.js'), codegen: require.resolve('./wasm-codegen'), mode: this.mode, kernelCache: this.kernelCache, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push({ worker, port: port1, ctrl: new Int32Array(new SharedArrayBuffer(4)) });
    }
    return this.workers[k];
  }

  post(k: number, part: KernelPart, spec: KernelSpec, args: Handle[], dst: Float32Array): Job {
    const w = this.get(k);
    Atomics.store(w.ctrl, 0, 0);
    const key = `${part.grid.join('x')}${spec.rows4 ? '*4' : ''}|${args.map((a) => (a as Float32Array).length).join(',')}|${part.source}`;
    w.port.postMessage({
      key,
      source: part.source,
      settings: kernelSettings(part.grid, spec.loopMax, false),
      args,
      scalars: spec.scalars,
      dst: dst.buffer,
      ctrl: w.ctrl.buffer,
      rows4: !!spec.rows4,
      grid: part.grid,
      offset: part.offset,
      size: part.size,
    });
    return { worker: k, ctrl: w.ctrl };
  }

  /** Blocks until the job is done; null, or the worker's error. */
  wait(job: Job): string | null {
    // generous: the first run of a kernel compiles it in the worker
    const deadline = Date.now() + 120_000;
    while (Atomics.load(job.ctrl, 0) === 0) {
      if (Date.now() > deadline) return 'timed out';
      Atomics.wait(job.ctrl, 0, 0, 1000);
    }
    if (Atomics.load(job.ctrl, 0) === 1) return null;
    const msg = receiveMessageOnPort(this.workers[job.worker].port);
    return msg ? String(msg.message) : 'worker failed';
  }

  destroy(): void {
    for (const w of this.workers) void w.worker.terminate();
    this.workers.length = 0;
  }
}
