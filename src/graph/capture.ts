/**
 * Capture: run a forward once, eagerly, while a kernel tracer (src/backend's `tracing` hook) records
 * every kernel it launches, and turn that into a graph of steps over values.
 *
 * A value is a device buffer: an input of the call, a parameter or buffer of the model (read from its
 * storage at each replay, so optimizer updates are seen), a constant made during the forward, or the
 * output of a step. A step is one kernel launch; elementwise ops (mapKernel) and matmul also record
 * what they compute (`meta`), which is what lets fuse.ts re-emit them inside one kernel.
 *
 * With autograd on, capture also records the backward program: right after the forward it runs the
 * gradient rules of the nodes the forward created (the same rules an eager backward runs, in the same
 * order) from a placeholder output gradient, down to the inputs and parameters, tracing those kernels
 * too. Replaying that program is backward through the compiled graph.
 *
 * Capture gives up (the caller then runs eagerly) when the forward reads data back to the host (its
 * control flow may depend on values: `while (x.abs().sum().item() > 1)`), draws random numbers, or
 * returns something other than a tensor; `permanent` marks the first two.
 */
import { Tensor } from '../tensor/tensor';
import { Storage } from '../tensor/storage';
import { DeviceBuffer, KernelSpec, KernelTracer, tracing } from '../backend/gpujs-backend';
import { rngStats } from '../tensor/random';
import { isGradEnabled, noGrad } from '../autograd/grad-mode';
import { propagate } from '../autograd/backward';
import { ones } from '../tensor/creation';
import { fmtShape } from '../tensor/shape';
import type { StridedRef } from '../backend/kernel-builder';

export type ValueKind = 'input' | 'param' | 'const' | 'step' | 'grad';

export interface Value {
  id: number;
  kind: ValueKind;
  size: number;
  /** input / param position */
  index?: number;
  /** the buffer seen at capture (kept alive for constants) */
  buffer: DeviceBuffer;
}

export interface MapMeta {
  kind: 'map';
  op: string;
  inputs: (StridedRef | number)[];
  expr: (xs: string[], kb: any) => string;
  outShape: readonly number[];
}

export interface Step {
  id: number;
  spec: KernelSpec;
  /** value per spec.inputs position */
  inputs: number[];
  out: number;
  meta?: MapMeta | ({ kind: 'matmul' } & Record<string, any>);
}

/** A tensor view of a value. */
export interface ValueView {
  value: number;
  shape: number[];
  strides: number[];
  offset: number;
}

export interface Graph {
  values: Value[];
  forward: Step[];
  backward: Step[] | null;
  output: ValueView;
  /** storages of params/buffers the forward wrote in place (BatchNorm's running stats): replay swaps them too */
  writes: { param: number; value: number }[];
  /** the backward's output gradient placeholder */
  gradSeed: number | null;
  /** per input then per param: the gradient view, or null where none flows */
  grads: (ValueView | null)[] | null;
  /** why there is no backward program (autograd was on) */
  noBackward?: string;
  /** graph rewrites applied before fusion (compile.ts) */
  rewrites?: string[];
}

export class CaptureFailed extends Error {
  constructor(message: string, readonly permanent: boolean) {
    super(message);
  }
}

class Tracer implements KernelTracer {
  readonly values: Value[] = [];
  readonly byBuffer = new Map<DeviceBuffer, number>();
  steps: Step[] = [];
  reads = 0;
  readWhat = '';

  value(kind: ValueKind, buffer: DeviceBuffer, index?: number): number {
    const known = this.byBuffer.get(buffer);
    if (known !== undefined) return known;
    const id = this.values.length;
    this.values.push({ id, kind, size: buffer.size, index, buffer });
    this.byBuffer.set(buffer, id);
    if (kind === 'const') buffer.retain();
    return id;
  }

  onRun(spec: KernelSpec, out: DeviceBuffer): void {
    const inputs = spec.inputs.map((b) => this.value('const', b));
    const id = this.value('step', out);
    this.steps.push({ id: this.steps.length, spec: { ...spec, inputs: [...spec.inputs] }, inputs, out: id, meta: spec.meta as Step['meta'] });
  }

  onUpload(buf: DeviceBuffer): void {
    this.value('const', buf);
  }

  onRead(buf: DeviceBuffer): void {
    this.reads++;
    if (!this.readWhat) this.readWhat = `a tensor of ${buf.size} element(s)`;
  }
}

function viewOf(t: Tensor, tracer: Tracer): ValueView {
  return { value: tracer.value('const', t.storage.buffer), shape: [...t.shape], strides: [...t.strides], offset: t.offset };
}

/**
 * Runs `fn` (the eager forward) under the tracer. `inputs` and `params` are the tensors whose current
 * data replays will substitute. Always returns the eager result; `graph` when the forward can be
 * replayed, else `failure` saying why.
 */
export function capture(fn: () => unknown, inputs: Tensor[], params: Tensor[], opts: { backward: boolean }): { result: unknown; graph?: Graph; failure?: CaptureFailed } {
  if (tracing.tracer) throw new Error('internal: nested graph capture');
  const tracer = new Tracer();
  inputs.forEach((t, k) => tracer.value('input', t.storage.buffer, k));
  params.forEach((t, k) => tracer.value('param', t.storage.buffer, k));
  const before = params.map((p) => p.storage.buffer);
  const draws = rngStats.draws;
  let result: unknown;
  tracing.tracer = tracer;
  try {
    result = fn();
  } finally {
    tracing.tracer = null;
  }
  const fail = (message: string, permanent: boolean) => {
    releaseValues(tracer.values);
    return { result, failure: new CaptureFailed(message, permanent) };
  };
  if (tracer.reads > 0) {
    return fail(`the forward reads tensor data back to the host (${tracer.readWhat}: item(), dataSync(), toArray()...), so its control flow may depend on values`, true);
  }
  if (rngStats.draws !== draws) return fail('the forward draws random numbers (dropout, rand): a trace would freeze them', true);
  if (!(result instanceof Tensor)) return fail(`the forward returned ${result === null ? 'null' : typeof result}, not a single Tensor`, false);
  const forward = tracer.steps;
  const output = viewOf(result, tracer);
  const writes: Graph['writes'] = [];
  params.forEach((p, k) => {
    if (p.storage.buffer !== before[k]) writes.push({ param: k, value: tracer.value('const', p.storage.buffer) });
  });
  const graph: Graph = { values: tracer.values, forward, backward: null, output, writes, gradSeed: null, grads: null };
  if (opts.backward && result.requiresGrad && result.gradFn) {
    try {
      captureBackward(result, inputs, params, tracer, graph);
    } catch (e) {
      graph.backward = null;
      graph.grads = null;
      graph.noBackward = (e as Error).message;
    }
  } else if (opts.backward) {
    graph.noBackward = 'the output does not require grad';
  }
  return { result, graph };
}

/** Drops the graph's hold on the constants it kept alive. */
export function releaseValues(values: Value[]): void {
  for (const v of values) if (v.kind === 'const') v.buffer.release();
}

/**
 * The backward program: the gradient rules of the forward's nodes, applied in the eager engine's
 * order (reverse topological, gradients of a node summed before it runs), from a placeholder output
 * gradient down to the inputs and parameters, traced. Nodes are only applied, never released, so the
 * eager graph of the capture call itself stays usable.
 */
function captureBackward(out: Tensor, inputs: Tensor[], params: Tensor[], tracer: Tracer, graph: Graph): void {
  const seed = noGrad(() => ones(out.shape, { device: out.device }));
  graph.gradSeed = tracer.value('grad', seed.storage.buffer);
  const leaves = [...inputs, ...params];
  const slot = new Map<Tensor, number>();
  leaves.forEach((t, k) => slot.set(t, k));
  const leafGrads: (Tensor | null)[] = leaves.map(() => null);
  tracer.steps = [];
  const draws = rngStats.draws;
  tracing.tracer = tracer;
  try {
    noGrad(() =>
      propagate(out.gradFn!, seed, {
        stopAt: (t) => slot.has(t),
        onLeaf: (input, gi) => {
          const s = slot.get(input);
          if (s === undefined) {
            throw new Error(`the forward uses a tensor of shape ${fmtShape(input.shape)} that requires grad but is neither an input nor a parameter of the model`);
          }
          leafGrads[s] = leafGrads[s] ? leafGrads[s]!.add(gi) : gi;
        },
      }),
    );
  } finally {
    tracing.tracer = null;
  }
  if (tracer.reads > 0) throw new Error('a gradient rule reads tensor data back to the host');
  if (rngStats.draws !== draws) throw new Error('a gradient rule draws random numbers');
  graph.backward = tracer.steps;
  graph.grads = leafGrads.map((g) => (g ? viewOf(g, tracer) : null));
}

/** Normalises a replay/capture input: contiguous, offset 0, owning its whole storage (kernels bake layouts in). */
export function canonical(t: Tensor): Tensor {
  if (t.isContiguous && t.offset === 0 && t.storage.size === t.numel()) return t;
  return t.clone();
}

/** A tensor viewing `buf` as `v` describes. */
export function viewTensor(buf: DeviceBuffer, v: ValueView): Tensor {
  return new Tensor(new Storage(buf), v.shape, v.strides, v.offset);
}

export { isGradEnabled };
