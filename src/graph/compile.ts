/**
 * `nn.compile(model)`: a model whose forward runs as a captured, fused kernel graph.
 *
 * The first call for an input signature (input shapes and device, training flags, whether autograd
 * needs a backward, the parameters' shapes and requiresGrad, hooks, plain-value arguments) runs the
 * model eagerly under capture (capture.ts) and returns that eager result; the graph is fused
 * (fuse.ts) into a forward program and, with autograd on, a backward program. Later calls with the
 * same signature replay the programs: the same kernels (fewer of them), with this call's inputs and
 * the parameters' current data, intermediates kept on the device and freed as soon as nothing needs
 * them. The output carries one autograd node whose rule replays the backward program, so
 * `loss.backward()` reaches the parameters exactly as in eager mode.
 *
 * Guards: a new signature captures again. A forward that reads data back to the host (data-dependent
 * control flow such as `while (x.abs().sum().item() > 1)`) or draws random numbers is run eagerly from
 * then on, for good; other things a graph cannot express (non-tensor outputs, a tensor requiring grad
 * that is neither input nor parameter) run eagerly for that signature. Either way results are eager's.
 *
 * As with any trace (torch.jit.trace): tensors the forward creates from host data and plain numbers it
 * reads from fields or closures are baked in at capture; parameters and buffers are not (they are read
 * from their storages at every replay). In-place writes to the model's parameters/buffers are replayed;
 * in-place writes to the call's input tensors are not. Index range checks (ops/validate.ts) run on the
 * capture call only: on replays an out-of-range index is clamped, as on the gpu device.
 */
import { Module } from '../nn/module';
import { stateOf } from '../nn/module-state';
import { isUninitialized } from '../nn/parameter';
import { Tensor } from '../tensor/tensor';
import { record } from '../autograd/node';
import { isGradEnabled, noGrad } from '../autograd/grad-mode';
import { backendFor } from '../backend/devices';
import { DeviceBuffer, tracing } from '../backend/gpujs-backend';
import { capture, canonical, Graph, MapMeta, releaseValues, viewTensor } from './capture';
import { isContiguous } from '../backend/kernel-builder';
import { numelOf, sameShape } from '../tensor/shape';
import { fuseProgram, Program } from './fuse';
import { explainCompiled } from './explain';

export interface CompileOptions {
  /** fuse elementwise chains and matmul epilogues (default true); false replays the captured kernels as they are */
  fuse?: boolean;
}

export interface CompiledStats {
  captures: number;
  replays: number;
  eagerCalls: number;
  /** parameter-derived steps (packed weights) reused from an earlier replay instead of recomputed */
  reusedSteps: number;
}

/** A compiled model: the model itself (parameters, train/eval, state dict...) with a compiled call. */
export type CompiledModule<M extends Module> = M & {
  /** The captured graphs and the generated fused kernel sources (printed, and returned). */
  explain(opts?: { print?: boolean }): string;
  readonly compileStats: CompiledStats;
  /** why calls run eagerly for good, or null */
  readonly eagerReason: string | null;
  readonly original: M;
};

export interface Plan {
  signature: string;
  graph: Graph;
  forward: Program;
  backward: Program | null;
  paramNames: string[];
  /** forward step outputs the backward program reads */
  saved: number[];
  /** forward step outputs to free right after the forward */
  scratch: number[];
  /** backward step outputs to free after the backward */
  backwardScratch: number[];
  /** gradient mode this plan was captured for */
  grad: boolean;
  /** forward steps computed from parameters/buffers and constants only (a packed weight): see runProgram */
  paramDerived: Set<number>;
  /** their outputs from the last replay, with the input buffers they were computed from */
  derived: Map<number, { inputs: DeviceBuffer[]; out: DeviceBuffer }>;
}

type Entry = Plan | { eager: string };

export class CompiledRunner {
  readonly plans = new Map<string, Entry>();
  readonly stats: CompiledStats = { captures: 0, replays: 0, eagerCalls: 0, reusedSteps: 0 };
  eagerReason: string | null = null;

  constructor(readonly model: Module, readonly opts: CompileOptions) {}

  call(args: unknown[]): unknown {
    const eager = () => {
      this.stats.eagerCalls++;
      return this.model.call(...args);
    };
    // inside another capture, run eagerly so its tracer sees (and inlines) our kernels
    if (this.eagerReason !== null || tracing.tracer) return eager();
    const inputs: Tensor[] = [];
    const sig: string[] = [];
    for (const a of args) {
      if (a instanceof Tensor) {
        inputs.push(a);
        sig.push(`T${a.shape.join('x')}@${a.device}${a.requiresGrad ? 'g' : ''}`);
      } else if (a === undefined || a === null || typeof a === 'number' || typeof a === 'boolean' || typeof a === 'string') {
        sig.push(JSON.stringify(a) ?? 'u');
      } else {
        return eager();
      }
    }
    const named = [...this.model.namedParameters(), ...this.model.namedBuffers()];
    const params = named.map(([, t]) => t);
    if (params.some((p) => isUninitialized(p))) return eager(); // lazy layers materialise on this call
    const grad = isGradEnabled() && (inputs.some((t) => t.requiresGrad) || params.some((p) => p.requiresGrad));
    const modules = this.model.modules();
    let hooks = 0;
    for (const m of modules) hooks += stateOf(m).hooks.size + stateOf(m).preHooks.size;
    sig.push(`train:${modules.map((m) => (m.training ? 1 : 0)).join('')}`, `grad:${grad ? 1 : 0}`, `hooks:${hooks}`);
    for (const p of params) sig.push(`${p.shape.join('x')}@${p.device}${p.requiresGrad ? 'g' : ''}`);
    const signature = sig.join('|');

    const entry = this.plans.get(signature);
    if (entry && 'eager' in entry) return eager();
    const canon = inputs.map(canonical);
    let k = 0;
    const cargs = args.map((a) => (a instanceof Tensor ? canon[k++] : a));
    if (entry) return this.replay(entry, canon, params, cargs);

    this.stats.captures++;
    const { result, graph, failure } = capture(() => this.model.call(...cargs), canon, params, { backward: grad });
    if (failure) {
      if (failure.permanent) this.eagerReason = failure.message;
      else this.plans.set(signature, { eager: failure.message });
    } else if (graph) {
      this.plans.set(signature, buildPlan(signature, graph, named.map(([n]) => n), grad, this.opts));
    }
    return result;
  }

  private replay(plan: Plan, inputs: Tensor[], params: Tensor[], args: unknown[]): Tensor {
    if (plan.grad && !plan.backward) {
      // autograd needs a backward the capture could not record: eager, for this signature
      this.stats.eagerCalls++;
      return this.model.call(...args) as Tensor;
    }
    this.stats.replays++;
    const g = plan.graph;
    const device = (inputs[0] ?? params[0])?.device;
    const backend = backendFor(device ?? 'cpu');
    const vals: (DeviceBuffer | undefined)[] = new Array(g.values.length);
    for (const v of g.values) {
      if (v.kind === 'input') vals[v.id] = inputs[v.index!].storage.buffer;
      else if (v.kind === 'param') vals[v.id] = params[v.index!].storage.buffer;
      else if (v.kind === 'const') vals[v.id] = v.buffer;
    }
    this.stats.reusedSteps += runProgram(plan.forward, vals, backend, plan);
    for (const w of g.writes) params[w.param].storage.swap(vals[w.value]!);
    const out = viewTensor(vals[g.output.value]!, g.output);
    if (!plan.grad) {
      freeValues(plan.scratch, vals);
      return out;
    }
    // hold what the backward reads; free the rest now
    const saved = new Map<number, Tensor>();
    for (const v of plan.saved) saved.set(v, Tensor.fromBuffer(vals[v]!, [g.values[v].size]));
    freeValues(plan.scratch, vals);
    const fwdVals = vals.slice();
    const leaves = [...inputs, ...params];
    return record(out, 'compiled', leaves, (grad) => {
      const bv = fwdVals.slice();
      for (const [v, t] of saved) bv[v] = t.storage.buffer;
      const gc = noGrad(() => canonical(grad));
      bv[g.gradSeed!] = gc.storage.buffer;
      runProgram(plan.backward!, bv, backend);
      const grads = g.grads!.map((view) => (view ? viewTensor(bv[view.value]!, view) : null));
      freeValues(plan.backwardScratch, bv);
      return grads;
    }, leaves);
  }

  explain(print = true): string {
    const text = explainCompiled(this);
    if (print) console.log(text);
    return text;
  }
}

/**
 * Runs a program's steps in order. With a plan, steps derived from parameters only (a weight packed for
 * the matmul, a transposed weight) are reused from the previous replay while their input buffers are the
 * same objects: buffers are immutable and every write to a parameter swaps in a new one, so in inference
 * a weight is packed once, and in training once per optimizer step, as in eager mode.
 */
function runProgram(p: Program, vals: (DeviceBuffer | undefined)[], backend: ReturnType<typeof backendFor>, plan?: Plan): number {
  let reused = 0;
  for (const s of p.steps) {
    const inputs = s.inputs.map((v) => {
      const b = vals[v];
      if (!b) throw new Error('internal: compiled graph step reads a value that was not computed');
      return b;
    });
    if (plan?.paramDerived.has(s.out)) {
      const hit = plan.derived.get(s.out);
      if (hit && hit.out.handle !== null && hit.inputs.every((b, k) => b === inputs[k])) {
        vals[s.out] = hit.out;
        reused++;
        continue;
      }
      const out = backend.run({ ...s.spec, inputs }).retain(); // held by the plan, not freed as scratch
      hit?.out.release();
      plan.derived.set(s.out, { inputs, out });
      vals[s.out] = out;
      continue;
    }
    vals[s.out] = backend.run({ ...s.spec, inputs });
  }
  return reused;
}

function freeValues(ids: number[], vals: (DeviceBuffer | undefined)[]): void {
  for (const v of ids) {
    const b = vals[v];
    // a fresh kernel output nobody retained: release frees it now
    if (b && b.refs === 0 && b.handle !== null) b.release();
  }
}

/**
 * ReLU's gradient rule reads its input (`g * (x > 0)`); `relu(x) > 0` exactly when `x > 0` (NaN and -0
 * included), so the backward can read relu's output instead. Then the pre-activation is no longer
 * saved, and the forward fuses relu into the matmul epilogue in training mode too.
 */
function reluMaskFromOutput(graph: Graph): void {
  if (!graph.backward) return;
  const byBuffer = new Map(graph.values.map((v) => [v.buffer, v.id] as const));
  const reluOf = new Map<number, number>();
  for (const s of graph.forward) {
    const m = s.meta as MapMeta | undefined;
    const r = m?.kind === 'map' && m.op === 'relu' ? m.inputs[0] : undefined;
    if (!r || typeof r === 'number' || r.offset !== 0 || !isContiguous(r) || !sameShape(r.shape, m!.outShape)) continue;
    const v = byBuffer.get(r.buffer);
    if (v !== undefined) reluOf.set(v, s.out);
  }
  for (const s of graph.backward) {
    const m = s.meta as MapMeta | undefined;
    if (m?.kind !== 'map' || m.op !== 'gt' || m.inputs[1] !== 0) continue;
    const r = m.inputs[0];
    if (typeof r === 'number' || r.offset !== 0 || !isContiguous(r)) continue;
    const v = byBuffer.get(r.buffer);
    const w = v === undefined ? undefined : reluOf.get(v);
    if (w === undefined || graph.values[w].size !== numelOf(r.shape)) continue;
    const wb = graph.values[w].buffer;
    m.inputs = [{ ...r, buffer: wb }, 0];
    s.spec = { ...s.spec, inputs: s.spec.inputs.map((b) => (b === r.buffer ? wb : b)) };
    s.inputs = s.inputs.map((id) => (id === v ? w : id));
    (graph.rewrites ??= []).push(`backward %${s.out} = gt(%${v}, 0) reads relu's output %${w} instead (same mask)`);
  }
}

function buildPlan(signature: string, graph: Graph, paramNames: string[], grad: boolean, opts: CompileOptions): Plan {
  const fuse = opts.fuse !== false;
  if (fuse) reluMaskFromOutput(graph);
  const outputs = new Set<number>([graph.output.value, ...graph.writes.map((w) => w.value)]);
  const stepOut = new Set(graph.forward.map((s) => s.out));
  const saved = new Set<number>();
  let backward: Program | null = null;
  const bwdOutputs = new Set<number>();
  if (grad && graph.backward && graph.grads) {
    for (const v of graph.grads) if (v) bwdOutputs.add(v.value);
    backward = fuseProgram(graph.backward, graph.values, bwdOutputs, { fuse });
    for (const s of backward.steps) for (const v of s.inputs) if (stepOut.has(v)) saved.add(v);
    for (const v of bwdOutputs) if (stepOut.has(v)) saved.add(v);
  }
  const forward = fuseProgram(graph.forward, graph.values, new Set([...outputs, ...saved]), { fuse });
  const keepFwd = new Set([...outputs, ...saved]);
  const scratch = forward.steps.map((s) => s.out).filter((v) => !keepFwd.has(v));
  const backwardScratch = backward ? backward.steps.map((s) => s.out).filter((v) => !bwdOutputs.has(v)) : [];
  // steps whose inputs are parameters, constants or such steps' outputs (never an output or in-place write)
  const paramDerived = new Set<number>();
  for (const s of forward.steps) {
    const fromParams = s.inputs.every((v) => graph.values[v].kind === 'param' || graph.values[v].kind === 'const' || paramDerived.has(v));
    if (fromParams && !outputs.has(s.out)) paramDerived.add(s.out);
  }
  return { signature, graph, forward, backward, paramNames, saved: [...saved], scratch, backwardScratch, grad, paramDerived, derived: new Map() };
}

/** Compiles a model: see the module comment. The result is used exactly like the model. */
export function compile<M extends Module>(model: M, opts: CompileOptions = {}): CompiledModule<M> {
  if (!(model instanceof Module)) throw new Error('compile: expected an nn.Module');
  const runner = new CompiledRunner(model, opts);
  const call = (...args: unknown[]) => runner.call(args);
  const explain = (o: { print?: boolean } = {}) => runner.explain(o.print ?? true);
  return new Proxy(model, {
    apply: (_t, _this, args) => runner.call(args),
    get: (t, key, receiver) => {
      switch (key) {
        case 'call':
          return call;
        case 'explain':
          return explain;
        case 'compileStats':
          return runner.stats;
        case 'eagerReason':
          return runner.eagerReason;
        case 'original':
          return model;
        case '__compiledRunner':
          return runner;
        default:
          return Reflect.get(t, key, receiver);
      }
    },
  }) as CompiledModule<M>;
}

/** Drops a runner's graphs (their constants' buffers). */
export function resetCompiled(m: CompiledModule<any>): void {
  const runner: CompiledRunner = (m as any).__compiledRunner;
  for (const e of runner.plans.values()) {
    if ('eager' in e) continue;
    releaseValues(e.graph.values);
    for (const d of e.derived.values()) d.out.release();
  }
  runner.plans.clear();
}
