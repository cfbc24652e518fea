/**
 * Forward hooks during a capture. The compiled model's own hooks run around its compiled forward
 * (compile.ts), so only hooks of modules inside it get here. Each hook call is recorded as an event
 * (where in the kernel order it happened, the module, the hook, and templates of the values it was
 * handed) and then made, for real, with the tracer set aside: the hook's kernels, host reads and random
 * draws are not part of the graph. A replay calls the hook at the same point with the replayed tensors.
 *
 * That is only sound for hooks that observe (return nothing, or exactly what they were handed). A hook
 * that returns new inputs or a new output, or whose results the forward goes on to read (an in-place
 * write to what it was handed, to a parameter the forward reads later), changes what the model
 * computes: the capture then fails and that signature runs eagerly. Hooks called from inside another
 * hook are that hook's business and are not recorded.
 */
import { Tensor } from '../tensor/tensor';
import { rngStats } from '../tensor/random';
import type { Node } from '../autograd/node';
import type { Module } from '../nn/module';
import { hookInterception, HookInterceptor, HookKind, hookReplaces } from '../nn/hooks';
import type { DeviceBuffer } from '../backend/buffer';
import type { GraphEvent, Template, Value, ValueKind } from './graph-types';

/** What the hook interception needs of the capture's Tracer (capture.ts): a structural type, so this module does not import the capture back. */
export interface HookTracer {
  inHook: number;
  readonly events: GraphEvent[];
  readonly steps: readonly unknown[];
  readonly values: Value[];
  noteWrites(): void;
  value(kind: ValueKind, buffer: DeviceBuffer): number;
  fail(message: string): void;
}

export interface HookedTensor {
  tensor: Tensor;
  /** the node that made it when the hook saw it (a later in-place op gives the tensor another) */
  node: Node | null;
  template: Extract<Template, { t: 'tensor' }>;
}

/** Path of `m` inside `root`, for messages. */
function pathOf(root: Module, m: Module): string {
  const hit = root.namedModules().find(([, x]) => x === m);
  return `'${hit?.[0] ?? '?'}' (${m.constructor.name})`;
}

class CaptureHooks implements HookInterceptor {
  readonly hooked: HookedTensor[] = [];
  private readonly templates = new Map<string, HookedTensor['template']>();
  hookDraws = 0;

  constructor(
    private readonly tracer: HookTracer,
    private readonly root: Module,
  ) {}

  run(kind: HookKind, module: Module, _id: number, hook: (...a: any[]) => unknown, args: unknown[], output?: unknown): unknown {
    const call = () => (kind === 'pre' ? hook(module, args) : hook(module, args, output));
    if (this.tracer.inHook) return call();
    const path = pathOf(this.root, module);
    const what = kind === 'pre' ? 'forward pre-hook' : 'forward hook';
    this.tracer.noteWrites();
    this.tracer.events.push({
      kind: 'hook',
      at: this.tracer.steps.length,
      hook: kind,
      module,
      path,
      fn: hook,
      args: this.template(args, `the ${what} of ${path} is handed an argument`),
      output: kind === 'forward' ? this.template(output, `the ${what} of ${path} is handed an output`) : undefined,
    });
    const draws = rngStats.draws;
    this.tracer.inHook++;
    let r: unknown;
    try {
      r = call();
    } finally {
      this.tracer.inHook--;
      this.hookDraws += rngStats.draws - draws;
    }
    if (hookReplaces(kind, r, args, output)) {
      this.tracer.fail(`the ${what} of ${path} returns ${kind === 'pre' ? 'new arguments' : 'a new output'}, which changes what the model computes`);
    }
    return r;
  }

  /** How a replay rebuilds `x`: tensors as views of graph values, plain data as it is. */
  private template(x: unknown, what: string): Template {
    if (x instanceof Tensor) {
      const view = { value: this.tracer.value('const', x.storage.buffer), shape: [...x.shape], strides: [...x.strides], offset: x.offset };
      // one template (and one backward program) per tensor, however many hooks are handed it
      const key = `${view.value}|${view.shape}|${view.strides}|${view.offset}`;
      const known = this.templates.get(key);
      if (known) return known;
      const template: HookedTensor['template'] = { t: 'tensor', view, requiresGrad: x.requiresGrad };
      this.templates.set(key, template);
      const kind = this.tracer.values[view.value].kind;
      if (x.requiresGrad && x.gradFn && kind !== 'input' && kind !== 'param') this.hooked.push({ tensor: x, node: x.gradFn, template });
      return template;
    }
    if (x === null || x === undefined || typeof x === 'number' || typeof x === 'string' || typeof x === 'boolean') return { t: 'literal', value: x };
    if (Array.isArray(x)) return { t: 'array', items: x.map((v) => this.template(v, what)) };
    const proto = Object.getPrototypeOf(x);
    if (typeof x === 'object' && (proto === Object.prototype || proto === null)) {
      return { t: 'object', entries: Object.entries(x).map(([k, v]) => [k, this.template(v, what)]) };
    }
    this.tracer.fail(`${what} that a replay cannot rebuild (${typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x})`);
    return { t: 'literal', value: undefined };
  }
}

/** Runs `fn` with every hook call inside it recorded on `tracer` (see the module comment). */
export function interceptHooks(tracer: HookTracer, root: Module, fn: () => unknown): { result: unknown; hooked: HookedTensor[]; hookDraws: number } {
  const hooks = new CaptureHooks(tracer, root);
  const outer = hookInterception.current;
  hookInterception.current = hooks;
  try {
    return { result: fn(), hooked: hooks.hooked, hookDraws: hooks.hookDraws };
  } finally {
    hookInterception.current = outer;
  }
}
