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
 * Random tensors the forward draws (rand/randn/uniform: dropout's mask) become `random` values: a replay
 * draws them afresh from the seeded RNG, in the order eager mode draws them, so a replay's dropout mask
 * is new each call (and with the same seed, eager's).
 *
 * Forward hooks of modules inside the model are not part of the graph: capture-hooks.ts records each
 * call as an event (where in the step order it happened and which values it was handed), and a replay
 * calls the hook there with the real tensors. Kernels a hook runs are not traced.
 *
 * Capture gives up (the caller then runs eagerly) when the forward reads data back to the host (its
 * control flow may depend on values: `while (x.abs().sum().item() > 1)`), draws random numbers other than
 * random tensors, lets a hook change what it computes, or returns something other than a tensor;
 * `permanent` marks the first.
 */
import { Tensor } from '../tensor/tensor';
import { Storage } from '../tensor/storage';
import { DeviceBuffer, KernelSpec, KernelTracer, tracing } from '../backend/gpujs-backend';
import { rngStats } from '../tensor/random';
import { isGradEnabled, noGrad } from '../autograd/grad-mode';
import { propagate } from '../autograd/backward';
import { ones } from '../tensor/creation';
import { fmtShape } from '../tensor/shape';
import type { Node } from '../autograd/node';
import type { Module } from '../nn/module';
import { interceptHooks } from './capture-hooks';

export type { ValueKind, Value, MapMeta, Step, ValueView, Template, GraphEvent, BackwardCapture, Graph } from './graph-types';
import type { ValueKind, Value, Step, ValueView, Template, GraphEvent, BackwardCapture, Graph } from './graph-types';

export class CaptureFailed extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

export class Tracer implements KernelTracer {
  readonly values: Value[] = [];
  readonly byBuffer = new Map<DeviceBuffer, number>();
  steps: Step[] = [];
  readonly events: GraphEvent[] = [];
  reads = 0;
  readWhat = '';
  /** RNG draws made for random values (any other draw in the forward fails the capture) */
  randomDraws = 0;
  /** > 0 while a hook runs: its kernels and reads are its own business, not the graph's */
  inHook = 0;
  /** buffers made while a hook ran: the forward must not read them (a replay would not have them) */
  readonly hookMade = new Set<DeviceBuffer>();
  /** why this signature cannot replay (the first reason found) */
  failure: string | null = null;
  private lastBuffers: DeviceBuffer[] = [];

  constructor(private readonly params: Tensor[] = []) {
    this.lastBuffers = params.map((p) => p.storage.buffer);
  }

  value(kind: ValueKind, buffer: DeviceBuffer, index?: number): number {
    const known = this.byBuffer.get(buffer);
    if (known !== undefined) return known;
    if (this.hookMade.has(buffer))
      this.fail('the forward reads a tensor that a forward hook computed (or wrote in place), so the hook changes what the model computes');
    const id = this.values.length;
    this.values.push({ id, kind, size: buffer.size, index, buffer });
    this.byBuffer.set(buffer, id);
    if (kind === 'const') buffer.retain();
    return id;
  }

  fail(message: string): void {
    this.failure ??= message;
  }

  onRun(spec: KernelSpec, out: DeviceBuffer): void {
    if (this.inHook) {
      this.hookMade.add(out);
      return;
    }
    const inputs = spec.inputs.map((b) => this.value('const', b));
    const id = this.value('step', out);
    this.steps.push({ id: this.steps.length, spec: { ...spec, inputs: [...spec.inputs] }, inputs, out: id, meta: spec.meta as Step['meta'] });
  }

  onUpload(buf: DeviceBuffer): void {
    if (this.inHook) this.hookMade.add(buf);
    else this.value('const', buf);
  }

  onRead(buf: DeviceBuffer): void {
    if (this.inHook) return;
    this.reads++;
    if (!this.readWhat) this.readWhat = `a tensor of ${buf.size} element(s)`;
  }

  onRandom(buf: DeviceBuffer, redraw: () => Float32Array, draws: number): void {
    if (this.inHook) return;
    const v = this.values[this.value('const', buf)];
    v.kind = 'random';
    v.redraw = redraw;
    this.randomDraws += draws;
    this.events.push({ kind: 'random', at: this.steps.length, value: v.id });
  }

  /** Records the parameters/buffers the forward wrote in place since the last look, as write events here. */
  noteWrites(): void {
    this.params.forEach((p, k) => {
      const b = p.storage.buffer;
      if (b === this.lastBuffers[k]) return;
      this.lastBuffers[k] = b;
      // a hook's own write happens again when a replay calls the hook
      if (!this.hookMade.has(b)) this.events.push({ kind: 'write', at: this.steps.length, param: k, value: this.value('const', b) });
    });
  }
}

export function viewOf(t: Tensor, tracer: Tracer): ValueView {
  return { value: tracer.value('const', t.storage.buffer), shape: [...t.shape], strides: [...t.strides], offset: t.offset };
}

/**
 * Runs `fn` (the eager forward of `root`) under the tracer. `inputs` and `params` are the tensors whose
 * current data replays will substitute. Always returns the eager result; `graph` when the forward can be
 * replayed, else `failure` saying why.
 */
export function capture(
  fn: () => unknown,
  root: Module,
  inputs: Tensor[],
  params: Tensor[],
  opts: { backward: boolean },
): { result: unknown; graph?: Graph; failure?: CaptureFailed } {
  if (tracing.tracer) throw new Error('internal: nested graph capture');
  const tracer = new Tracer(params);
  inputs.forEach((t, k) => tracer.value('input', t.storage.buffer, k));
  params.forEach((t, k) => tracer.value('param', t.storage.buffer, k));
  const draws = rngStats.draws;
  let result: unknown;
  let hooked: { tensor: Tensor; node: Node | null; template: Extract<Template, { t: 'tensor' }> }[] = [];
  let hookDraws = 0;
  tracing.tracer = tracer;
  try {
    ({ result, hooked, hookDraws } = interceptHooks(tracer, root, fn));
    tracer.noteWrites();
  } finally {
    tracing.tracer = null;
  }
  const fail = (message: string, permanent: boolean) => {
    releaseValues(tracer.values);
    return { result, failure: new CaptureFailed(message, permanent) };
  };
  if (tracer.reads > 0) {
    return fail(
      `the forward reads tensor data back to the host (${tracer.readWhat}: item(), dataSync(), toArray()...), so its control flow may depend on values`,
      true,
    );
  }
  if (rngStats.draws - draws !== tracer.randomDraws + hookDraws) {
    return fail('the forward draws random numbers other than random tensors (rand, randn, uniform), so its control flow may depend on them', false);
  }
  if (!(result instanceof Tensor)) return fail(`the forward returned ${result === null ? 'null' : typeof result}, not a single Tensor`, false);
  const output = viewOf(result, tracer);
  if (tracer.failure) return fail(tracer.failure, false);
  const graph: Graph = {
    values: tracer.values,
    forward: tracer.steps,
    backward: null,
    output,
    events: tracer.events,
    gradSeed: null,
    grads: null,
    hookGrads: [],
  };
  if (opts.backward && result.requiresGrad && result.gradFn) {
    try {
      const b = captureBackward(result.gradFn, result, inputs, params, tracer);
      graph.backward = b.steps;
      graph.gradSeed = b.gradSeed;
      graph.grads = b.grads;
      // a hook may use what it was handed in a loss: those tensors get a backward program each
      for (const h of hooked) {
        if (!h.node) continue;
        h.template.grad = graph.hookGrads.length;
        graph.hookGrads.push(captureBackward(h.node, h.tensor, inputs, params, tracer));
      }
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

/** Drops the graph's hold on the constants (and random values) it kept alive. */
export function releaseValues(values: Value[]): void {
  for (const v of values) if (v.kind === 'const' || v.kind === 'random') v.buffer.release();
}

/**
 * A backward program: the gradient rules of the forward's nodes from `start` (the node that made `of`),
 * applied in the eager engine's order (reverse topological, gradients of a node summed before it runs),
 * from a placeholder gradient down to the inputs and parameters, traced. Nodes are only applied, never
 * released, so the eager graph of the capture call itself stays usable.
 */
function captureBackward(start: Node, of: Tensor, inputs: Tensor[], params: Tensor[], tracer: Tracer): BackwardCapture {
  const seed = noGrad(() => ones(of.shape, { device: of.device }));
  const gradSeed = tracer.value('grad', seed.storage.buffer);
  const leaves = [...inputs, ...params];
  const slot = new Map<Tensor, number>();
  leaves.forEach((t, k) => slot.set(t, k));
  const leafGrads: (Tensor | null)[] = leaves.map(() => null);
  tracer.steps = [];
  const draws = rngStats.draws;
  tracing.tracer = tracer;
  try {
    noGrad(() =>
      propagate(start, seed, {
        stopAt: (t) => slot.has(t),
        onLeaf: (input, gi) => {
          const s = slot.get(input);
          if (s === undefined) {
            throw new Error(
              `the forward uses a tensor of shape ${fmtShape(input.shape)} that requires grad but is neither an input nor a parameter of the model`,
            );
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
  return { steps: tracer.steps, gradSeed, grads: leafGrads.map((g) => (g ? viewOf(g, tracer) : null)) };
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
