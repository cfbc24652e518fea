/**
 * `nn.compile(model)`: a model whose forward runs as a captured, fused kernel graph.
 *
 * The first call for an input signature (input shapes and device, training flags, whether autograd
 * needs a backward, the parameters' shapes and requiresGrad, which hooks inner modules have, plain-value
 * arguments) runs the model eagerly under capture (capture.ts) and returns that eager result; the graph
 * is fused (fuse.ts) into a forward program and, with autograd on, a backward program (plan.ts). Later
 * calls with the same signature replay the programs (replay.ts): the same kernels (fewer of them), with
 * this call's inputs and the parameters' current data, intermediates kept on the device and freed as
 * soon as nothing needs them. The output carries one autograd node whose rule replays the backward
 * program, so `loss.backward()` reaches the parameters exactly as in eager mode.
 *
 * Hooks keep their eager meaning:
 *  - the compiled model's own pre-hooks and hooks run around the compiled forward, eagerly, on every
 *    call: they may observe, replace the arguments (the signature is taken from what they return) or
 *    replace the output;
 *  - hooks of modules inside it run on every call too, with the real tensors, at the point of the
 *    forward where eager mode runs them (capture-hooks.ts, replay.ts): a replay calls them between its
 *    kernels. Tensors handed to them that require grad carry a backward of their own, so a loss built
 *    from a hooked activation trains as in eager mode. Such a hook must only observe: one that replaces
 *    its module's inputs or output, or writes to what the forward reads next, makes its signature run
 *    eagerly (a trace cannot both re-run arbitrary code and bake in what it computed);
 *  - plans are keyed by the identity of inner modules' hooks: registering or removing one captures again.
 *
 * Random tensors (dropout's mask) are inputs of the graph drawn afresh on each replay, from the seeded
 * RNG in eager order: a training signature replays with new masks, an eval signature has none.
 *
 * Guards: a new signature captures again. A forward that reads data back to the host (data-dependent
 * control flow such as `while (x.abs().sum().item() > 1)`) is run eagerly from then on, for good; other
 * things a graph cannot express (non-tensor outputs, a tensor requiring grad that is neither input nor
 * parameter, random numbers drawn on the host, a hook that changes the computation) run eagerly for that
 * signature. Either way results are eager's.
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
import { callStack } from '../nn/call-stack';
import { runForwardHooks, runPreHooks } from '../nn/hooks';
import { Tensor } from '../tensor/tensor';
import { isGradEnabled } from '../autograd/grad-mode';
import { tracing } from '../backend/gpujs-backend';
import { capture, canonical, releaseValues } from './capture';
import { buildPlan, CompileOptions, Plan } from './plan';
import { HookChangedGraph, replay } from './replay';
import { explainCompiled } from './explain';

export type { CompileOptions, Plan };

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

type Entry = Plan | { eager: string };

export class CompiledRunner {
  readonly plans = new Map<string, Entry>();
  readonly stats: CompiledStats = { captures: 0, replays: 0, eagerCalls: 0, reusedSteps: 0 };
  eagerReason: string | null = null;

  constructor(
    readonly model: Module,
    readonly opts: CompileOptions,
  ) {}

  /** What `compiled(...args)` does: the model's own hooks around the compiled forward, as Module.call. */
  call(args: unknown[]): unknown {
    return callStack.within(this.model, () => {
      args = runPreHooks(this.model, args);
      return runForwardHooks(this.model, args, this.forward(args));
    });
  }

  /** The signature of a call (see the module comment), or null when an argument cannot be part of one. */
  private signature(args: unknown[], inputs: Tensor[], params: Tensor[]): { signature: string; grad: boolean } | null {
    const sig: string[] = [];
    for (const a of args) {
      if (a instanceof Tensor) {
        inputs.push(a);
        sig.push(`T${a.shape.join('x')}@${a.device}${a.requiresGrad ? 'g' : ''}`);
      } else if (a === undefined || a === null || typeof a === 'number' || typeof a === 'boolean' || typeof a === 'string') {
        sig.push(JSON.stringify(a) ?? 'u');
      } else {
        return null;
      }
    }
    const grad = isGradEnabled() && (inputs.some((t) => t.requiresGrad) || params.some((p) => p.requiresGrad));
    const modules = this.model.modules();
    // hooks by identity (ids are never reused): a removed hook and a new one make a different plan
    const hooks: string[] = [];
    modules.forEach((m, k) => {
      const s = stateOf(m);
      if (m !== this.model && (s.preHooks.size || s.hooks.size))
        hooks.push(`${k}:${[...s.preHooks.keys()].join(',')}/${[...s.hooks.keys()].join(',')}`);
    });
    sig.push(`train:${modules.map((m) => (m.training ? 1 : 0)).join('')}`, `grad:${grad ? 1 : 0}`, `hooks:${hooks.join(';')}`);
    for (const p of params) sig.push(`${p.shape.join('x')}@${p.device}${p.requiresGrad ? 'g' : ''}`);
    return { signature: sig.join('|'), grad };
  }

  /** The model's forward: eager, captured or replayed. */
  private forward(args: unknown[]): unknown {
    const eager = () => {
      this.stats.eagerCalls++;
      return this.model.forward(...args);
    };
    // inside another capture, run eagerly so its tracer sees (and inlines) our kernels
    if (this.eagerReason !== null || tracing.tracer) return eager();
    const named = [...this.model.namedParameters(), ...this.model.namedBuffers()];
    const params = named.map(([, t]) => t);
    if (params.some((p) => isUninitialized(p))) return eager(); // lazy layers materialise on this call
    const inputs: Tensor[] = [];
    const sig = this.signature(args, inputs, params);
    if (!sig) return eager();
    const { signature, grad } = sig;

    const entry = this.plans.get(signature);
    if (entry && 'eager' in entry) return eager();
    const canon = inputs.map(canonical);
    let k = 0;
    const cargs = args.map((a) => (a instanceof Tensor ? canon[k++] : a));
    if (entry) {
      if (entry.grad && !entry.backward) return eager(); // autograd needs a backward the capture could not record
      try {
        const r = replay(entry, canon, params);
        this.stats.replays++;
        this.stats.reusedSteps += r.reusedSteps;
        return r.out;
      } catch (e) {
        if (!(e instanceof HookChangedGraph)) throw e;
        this.drop(signature, e.message);
        throw new Error(
          `compile: ${e.message}; a compiled replay cannot take a hook's replacement, so this call failed and calls with this signature run eagerly from now on`,
        );
      }
    }

    this.stats.captures++;
    const { result, graph, failure } = capture(() => this.model.forward(...cargs), this.model, canon, params, { backward: grad });
    if (failure) {
      if (failure.permanent) this.eagerReason = failure.message;
      else this.plans.set(signature, { eager: failure.message });
    } else if (graph) {
      this.plans.set(
        signature,
        buildPlan(
          signature,
          graph,
          named.map(([n]) => n),
          grad,
          this.opts,
        ),
      );
    }
    return result;
  }

  /**
   * Makes a signature run eagerly. Its plan's constants are not freed: outputs of earlier replays may
   * still run its backward program.
   */
  private drop(signature: string, why: string): void {
    this.plans.set(signature, { eager: why });
  }

  explain(print = true): string {
    const text = explainCompiled(this);
    if (print) console.log(text);
    return text;
  }
}

function freePlan(p: Plan): void {
  releaseValues(p.graph.values);
  for (const d of p.derived.values()) d.out.release();
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
  for (const e of runner.plans.values()) if (!('eager' in e)) freePlan(e);
  runner.plans.clear();
}
