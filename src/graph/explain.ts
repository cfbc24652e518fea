/**
 * `compiled.explain()`: what a compiled model captured and what it runs — per signature, the captured
 * kernel graph (one line per kernel: op, inputs, output size), the fused programs (which ops each kernel
 * computes) and the generated source of every fused kernel.
 */
import type { Plan } from './plan';
import type { Program } from './fuse';
import type { Graph, Step } from './capture';

function valueName(g: Graph, id: number, plan: Plan): string {
  const v = g.values[id];
  switch (v.kind) {
    case 'input':
      return `input${v.index}`;
    case 'param':
      return plan.paramNames[v.index!] ?? `param${v.index}`;
    case 'const':
      return `const%${id}[${v.size}]`;
    case 'random':
      return `random%${id}[${v.size}]`;
    case 'grad':
      return 'grad_output';
    default:
      return `%${id}`;
  }
}

/** An operand as the op saw it: the value, and its view when that is not the plain value (e.g. a transpose). */
function operand(g: Graph, r: any, plan: Plan): string {
  if (typeof r === 'number') return String(r);
  const v = g.values.find((x) => x.buffer === r.buffer);
  const name = v ? valueName(g, v.id, plan) : '?';
  const contiguous = r.strides.every(
    (st: number, d: number) =>
      r.shape[d] === 1 || st === r.strides.slice(d + 1).reduce((p: number, _: number, i: number) => p * r.shape[d + 1 + i], 1),
  );
  return contiguous && r.offset === 0
    ? name
    : `${name}{view [${r.shape.join(', ')}] strides [${r.strides.join(', ')}]${r.offset ? ` +${r.offset}` : ''}}`;
}

function stepLine(g: Graph, s: Step, plan: Plan): string {
  const m = s.meta as any;
  if (m?.kind === 'map') return `  %${s.out} = ${m.op}(${m.inputs.map((r: any) => operand(g, r, plan)).join(', ')}) [${m.outShape.join(', ')}]`;
  if (m?.kind === 'matmul') return `  %${s.out} = matmul(${operand(g, m.a, plan)}, ${operand(g, m.b, plan)}) [${[...m.batch, m.M, m.N].join(', ')}]`;
  const op = m?.kind === 'direct-linear' ? 'linear' : /\bfor \(/.test(s.spec.source) ? 'kernel(loop)' : 'kernel';
  return `  %${s.out} = ${op}(${s.inputs.map((v) => valueName(g, v, plan)).join(', ')}) (${s.spec.outSize} cells)`;
}

function programText(g: Graph, p: Program, plan: Plan, title: string): string[] {
  const lines = [`${title}: ${p.captured} captured kernels -> ${p.steps.length} kernels`];
  p.steps.forEach((s, k) => {
    lines.push(
      `  [${k}] %${s.out} = ${s.ops.join(' + ')}(${s.inputs.map((v) => valueName(g, v, plan)).join(', ')})${s.fused ? '   <- fused' : ''}${s.spec.rows4 ? '   (tiled 4 rows/thread)' : ''}${plan.paramDerived.has(s.out) ? '   (parameters only: reused until they change)' : ''}`,
    );
  });
  return lines;
}

export function explainPlan(plan: Plan): string {
  const g = plan.graph;
  const lines: string[] = [`signature ${plan.signature}`];
  lines.push(`captured forward graph (${g.forward.length} kernels), output ${valueName(g, g.output.value, plan)} [${g.output.shape.join(', ')}]:`);
  for (const s of g.forward) lines.push(stepLine(g, s, plan));
  for (const e of g.events) {
    if (e.kind === 'write') lines.push(`  after ${e.at} kernels: write ${plan.paramNames[e.param]} <- %${e.value}`);
    else if (e.kind === 'random') lines.push(`  after ${e.at} kernels: draw ${valueName(g, e.value, plan)} afresh`);
    else lines.push(`  after ${e.at} kernels: call the forward ${e.hook === 'pre' ? 'pre-hook' : 'hook'} of ${e.path}`);
  }
  if (g.backward) {
    lines.push(`captured backward graph (${g.backward.length} kernels):`);
    for (const s of g.backward) lines.push(stepLine(g, s, plan));
    const nIn = g.grads!.length - plan.paramNames.length;
    const leaf = (k: number) => (k < nIn ? `input${k}` : plan.paramNames[k - nIn]);
    lines.push(
      `  gradients: ${g.grads!.map((v, k) => `${leaf(k)} <- ${v ? `%${v.value}${v.strides.some((st, d) => d < v.strides.length - 1 && st < v.strides[d + 1]) ? ' (transposed view)' : ''}` : 'none'}`).join(', ')}`,
    );
  } else if (plan.grad) {
    lines.push(`no backward program (${g.noBackward}): calls with autograd run eagerly`);
  }
  for (const r of g.rewrites ?? []) lines.push(`rewrite: ${r}`);
  lines.push(...programText(g, plan.forward, plan, 'forward program'));
  if (plan.backward) lines.push(...programText(g, plan.backward, plan, 'backward program'));
  plan.hookBackward.forEach((b, k) =>
    lines.push(...programText(g, b.program, plan, `backward program of hook-handed tensor ${k} (runs only when a loss uses it)`)),
  );
  const fused = [plan.forward, plan.backward, ...plan.hookBackward.map((b) => b.program)].flatMap((p) => p?.steps ?? []).filter((s) => s.fused);
  for (const s of fused) {
    lines.push(`fused kernel %${s.out} = ${s.ops.join(' + ')}:`);
    lines.push(
      s.spec.source
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n'),
    );
  }
  return lines.join('\n');
}

/** What explainCompiled reads of a CompiledRunner (compile.ts calls this module, so it names no type of compile.ts). */
export interface CompiledSummary {
  readonly model: object;
  readonly stats: { readonly captures: number; readonly replays: number; readonly eagerCalls: number };
  readonly eagerReason: string | null;
  readonly plans: ReadonlyMap<string, Plan | { eager: string }>;
}

export function explainCompiled(r: CompiledSummary): string {
  const lines: string[] = [
    `compiled ${r.model.constructor.name}: ${r.stats.captures} capture(s), ${r.stats.replays} replay(s), ${r.stats.eagerCalls} eager call(s)`,
  ];
  if (r.eagerReason) lines.push(`runs eagerly for good: ${r.eagerReason}`);
  if (r.plans.size === 0 && !r.eagerReason) lines.push('nothing captured yet: call the model first');
  for (const e of r.plans.values()) {
    lines.push('');
    if ('eager' in e) lines.push(`a signature runs eagerly: ${e.eager}`);
    else lines.push(explainPlan(e));
  }
  return lines.join('\n');
}
