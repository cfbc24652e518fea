/**
 * Replaying a plan: the forward program with this call's inputs and the parameters' current data, the
 * graph's events at the points the capture saw them (fresh random draws, in-place parameter writes,
 * calls of inner modules' hooks with the replayed tensors), and an autograd node on the output whose rule
 * runs the backward program.
 */
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { noGrad } from '../autograd/grad-mode';
import { backendFor } from '../backend/devices';
import type { DeviceBuffer } from '../backend/gpujs-backend';
import { canonical, GraphEvent, Template, viewTensor } from './capture';
import type { Program, ExecStep } from './fuse';
import type { Plan } from './plan';
import { hookReplaces } from '../nn/hooks';

type Backend = ReturnType<typeof backendFor>;
type Vals = (DeviceBuffer | undefined)[];

/** A hook returned a value on a replay where the capture saw it return nothing: the plan cannot take it. */
export class HookChangedGraph extends Error {}

/**
 * Runs one step. With a plan, steps derived from parameters only (a weight packed for the matmul, a
 * transposed weight) are reused from the previous replay while their input buffers are the same objects:
 * buffers are immutable and every write to a parameter swaps in a new one, so in inference a weight is
 * packed once, and in training once per optimizer step, as in eager mode. Returns 1 when reused.
 */
function runStep(s: ExecStep, vals: Vals, backend: Backend, plan?: Plan): number {
  const inputs = s.inputs.map((v) => {
    const b = vals[v];
    if (!b) throw new Error('internal: compiled graph step reads a value that was not computed');
    return b;
  });
  if (plan?.paramDerived.has(s.out)) {
    const hit = plan.derived.get(s.out);
    if (hit && hit.out.handle !== null && hit.inputs.every((b, k) => b === inputs[k])) {
      vals[s.out] = hit.out;
      return 1;
    }
    const out = backend.run({ ...s.spec, inputs }).retain(); // held by the plan, not freed as scratch
    hit?.out.release();
    plan.derived.set(s.out, { inputs, out });
    vals[s.out] = out;
    return 0;
  }
  vals[s.out] = backend.run({ ...s.spec, inputs });
  return 0;
}

function runProgram(p: Program, vals: Vals, backend: Backend): void {
  for (const s of p.steps) runStep(s, vals, backend);
}

function freeValues(ids: number[], vals: Vals): void {
  for (const v of ids) {
    const b = vals[v];
    // a fresh kernel output nobody retained: release frees it now
    if (b && b.refs === 0 && b.handle !== null) b.release();
  }
}

export interface ReplayResult {
  out: Tensor;
  reusedSteps: number;
}

/** Replays `plan` (see the module comment). `inputs` are canonical (capture.ts). */
export function replay(plan: Plan, inputs: Tensor[], params: Tensor[]): ReplayResult {
  const g = plan.graph;
  const device = (inputs[0] ?? params[0])?.device;
  const backend = backendFor(device ?? 'cpu');
  const vals: Vals = new Array(g.values.length);
  for (const v of g.values) {
    if (v.kind === 'input') vals[v.id] = inputs[v.index!].storage.buffer;
    else if (v.kind === 'param') vals[v.id] = params[v.index!].storage.buffer;
    else if (v.kind === 'const') vals[v.id] = v.buffer;
  }
  const leaves = [...inputs, ...params];
  // what the backward programs read, held once the forward is done (hook-handed tensors' nodes read it too)
  const saved = new Map<number, Tensor>();
  // a write event swaps a parameter's storage; steps captured before it still read the old buffer
  const held = params.map((p) => p.storage.buffer.retain());
  let reusedSteps = 0;
  let next = 0;
  const steps = plan.forward.steps;
  const runUntil = (at: number) => {
    for (; next < steps.length && steps[next].at < at; next++) reusedSteps += runStep(steps[next], vals, backend, plan);
  };

  // one tensor per value and view, as eager hands the same tensor to a module's pre-hooks, forward and hooks
  const handed = new Map<string, Tensor>();
  /** A tensor of the replay for a hook: the call's own input or parameter where it is one, else a view of the value. */
  const tensorFor = (t: Extract<Template, { t: 'tensor' }>): Tensor => {
    const v = g.values[t.view.value];
    const own = v.kind === 'input' ? inputs[v.index!] : v.kind === 'param' ? params[v.index!] : undefined;
    if (own && own.offset === t.view.offset && own.shape.join() === t.view.shape.join() && own.strides.join() === t.view.strides.join()) return own;
    const key = `${v.id}|${t.view.shape}|${t.view.strides}|${t.view.offset}`;
    const known = handed.get(key);
    if (known) return known;
    let x = viewTensor(vals[v.id]!, t.view);
    const bw = t.grad === undefined ? undefined : plan.hookBackward[t.grad];
    if (plan.grad && bw) x = record(x, 'compiled(hooked)', leaves, (grad) => runBackward(bw.program, bw.seed, bw.grads, bw.scratch, grad), leaves);
    handed.set(key, x);
    return x;
  };
  const build = (t: Template): unknown => {
    switch (t.t) {
      case 'literal':
        return t.value;
      case 'array':
        return t.items.map(build);
      case 'object':
        return Object.fromEntries(t.entries.map(([k, x]) => [k, build(x)]));
      case 'tensor':
        return tensorFor(t);
    }
  };
  const callHook = (e: Extract<GraphEvent, { kind: 'hook' }>) => {
    const args = build(e.args) as unknown[];
    const output = e.hook === 'pre' ? undefined : build(e.output!);
    const r = e.hook === 'pre' ? e.fn(e.module, args) : e.fn(e.module, args, output);
    if (hookReplaces(e.hook, r, args, output)) {
      const what = e.hook === 'pre' ? 'forward pre-hook' : 'forward hook';
      throw new HookChangedGraph(
        `the ${what} of ${e.path} returned ${e.hook === 'pre' ? 'new arguments' : 'a new output'} on a replay but nothing when this signature was captured`,
      );
    }
  };
  const fwdVals = vals; // the backward closures read the forward's values through this
  const runBackward = (program: Program, seed: number, grads: Plan['hookBackward'][number]['grads'], scratch: number[], grad: Tensor) => {
    const bv = fwdVals.slice();
    for (const [v, t] of saved) bv[v] = t.storage.buffer;
    const gc = noGrad(() => canonical(grad));
    bv[seed] = gc.storage.buffer;
    runProgram(program, bv, backend);
    const out = grads.map((view) => (view ? viewTensor(bv[view.value]!, view) : null));
    freeValues(scratch, bv);
    return out;
  };

  try {
    for (const e of g.events) {
      runUntil(e.at);
      if (e.kind === 'random') vals[e.value] = backend.upload(g.values[e.value].redraw!());
      else if (e.kind === 'write') params[e.param].storage.swap(vals[e.value]!);
      else callHook(e);
    }
    runUntil(Infinity);
  } catch (err) {
    // nothing half-done stays allocated: every value this replay made and nobody holds is freed
    freeValues([...plan.scratch, ...plan.saved, ...steps.map((s) => s.out)], vals);
    throw err;
  } finally {
    for (const b of held) b.release();
  }
  const out = viewTensor(vals[g.output.value]!, g.output);
  if (!plan.grad) {
    freeValues(plan.scratch, vals);
    return { out, reusedSteps };
  }
  for (const v of plan.saved) saved.set(v, Tensor.fromBuffer(vals[v]!, [g.values[v].size]));
  freeValues(plan.scratch, vals);
  const mainGrads = g.grads!;
  return {
    out: record(out, 'compiled', leaves, (grad) => runBackward(plan.backward!, g.gradSeed!, mainGrads, plan.backwardScratch, grad), leaves),
    reusedSteps,
  };
}
