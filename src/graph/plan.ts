/**
 * A plan: what a compiled model replays for one signature — the captured graph fused into a forward
 * program and, with autograd, backward programs (one from the output, one per hook-handed tensor that
 * requires grad), with the bookkeeping that tells a replay what to keep and what to free.
 */
import type { DeviceBuffer } from '../backend/gpujs-backend';
import { isContiguous } from '../backend/kernel-builder';
import { numelOf, sameShape } from '../tensor/shape';
import type { BackwardCapture, Graph, MapMeta, Step, Template, ValueView } from './capture';
import { fuseProgram, Program } from './fuse';

export interface CompileOptions {
  /** fuse elementwise chains and matmul epilogues (default true); false replays the captured kernels as they are */
  fuse?: boolean;
}

export interface BackwardPlan {
  program: Program;
  /** the placeholder value the output gradient goes in */
  seed: number;
  /** per input then per param: the gradient view, or null where none flows */
  grads: (ValueView | null)[];
  /** step outputs to free after the backward */
  scratch: number[];
}

export interface Plan {
  signature: string;
  graph: Graph;
  forward: Program;
  /** the backward from the output (null: none could be captured) */
  backward: Program | null;
  paramNames: string[];
  /** forward values (step outputs, random draws) the backward programs read */
  saved: number[];
  /** forward values to free right after the forward */
  scratch: number[];
  /** backward step outputs to free after the backward */
  backwardScratch: number[];
  /** backward programs of hook-handed tensors (Graph.hookGrads) */
  hookBackward: BackwardPlan[];
  /** gradient mode this plan was captured for */
  grad: boolean;
  /** forward steps computed from parameters/buffers and constants only (a packed weight): see replay.ts */
  paramDerived: Set<number>;
  /** their outputs from the last replay, with the input buffers they were computed from */
  derived: Map<number, { inputs: DeviceBuffer[]; out: DeviceBuffer }>;
}

/**
 * ReLU's gradient rule reads its input (`g * (x > 0)`); `relu(x) > 0` exactly when `x > 0` (NaN and -0
 * included), so the backward can read relu's output instead. Then the pre-activation is no longer
 * saved, and the forward fuses relu into the matmul epilogue in training mode too.
 */
function reluMaskFromOutput(graph: Graph, backward: Step[]): void {
  const byBuffer = new Map(graph.values.map((v) => [v.buffer, v.id] as const));
  const reluOf = new Map<number, number>();
  for (const s of graph.forward) {
    const m = s.meta as MapMeta | undefined;
    const r = m?.kind === 'map' && m.op === 'relu' ? m.inputs[0] : undefined;
    if (!r || typeof r === 'number' || r.offset !== 0 || !isContiguous(r) || !sameShape(r.shape, m!.outShape)) continue;
    const v = byBuffer.get(r.buffer);
    if (v !== undefined) reluOf.set(v, s.out);
  }
  for (const s of backward) {
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

/** Values of the tensors in a hook's template. */
function templateValues(t: Template | undefined, out: Set<number>): void {
  if (!t) return;
  if (t.t === 'tensor') out.add(t.view.value);
  else if (t.t === 'array') t.items.forEach((x) => templateValues(x, out));
  else if (t.t === 'object') t.entries.forEach(([, x]) => templateValues(x, out));
}

export function buildPlan(signature: string, graph: Graph, paramNames: string[], grad: boolean, opts: CompileOptions): Plan {
  const fuse = opts.fuse !== false;
  const captures: BackwardCapture[] = [];
  if (grad && graph.backward && graph.grads)
    captures.push({ steps: graph.backward, gradSeed: graph.gradSeed!, grads: graph.grads }, ...graph.hookGrads);
  if (fuse) for (const c of captures) reluMaskFromOutput(graph, c.steps);
  // what must exist after the forward, or at a point of it: the output, in-place writes, tensors handed to hooks
  const outputs = new Set<number>([graph.output.value]);
  for (const e of graph.events) {
    if (e.kind === 'write') outputs.add(e.value);
    if (e.kind === 'hook') {
      templateValues(e.args, outputs);
      templateValues(e.output, outputs);
    }
  }
  // values the forward makes: step outputs and fresh random draws
  const made = new Set(graph.forward.map((s) => s.out));
  for (const e of graph.events) if (e.kind === 'random') made.add(e.value);
  const saved = new Set<number>();
  const backwards: BackwardPlan[] = captures.map((c) => {
    const gradOuts = new Set<number>();
    for (const v of c.grads) if (v) gradOuts.add(v.value);
    const program = fuseProgram(c.steps, graph.values, gradOuts, { fuse });
    for (const s of program.steps) for (const v of s.inputs) if (made.has(v)) saved.add(v);
    for (const v of gradOuts) if (made.has(v)) saved.add(v);
    return { program, seed: c.gradSeed, grads: c.grads, scratch: program.steps.map((s) => s.out).filter((v) => !gradOuts.has(v)) };
  });
  const keep = new Set([...outputs, ...saved]);
  const forward = fuseProgram(graph.forward, graph.values, keep, { fuse });
  const scratch = [...forward.steps.map((s) => s.out), ...graph.events.flatMap((e) => (e.kind === 'random' ? [e.value] : []))].filter(
    (v) => !keep.has(v),
  );
  // steps whose inputs are parameters, constants or such steps' outputs (never an output or in-place write)
  const paramDerived = new Set<number>();
  for (const s of forward.steps) {
    const fromParams = s.inputs.every((v) => graph.values[v].kind === 'param' || graph.values[v].kind === 'const' || paramDerived.has(v));
    if (fromParams && !outputs.has(s.out)) paramDerived.add(s.out);
  }
  const [main, ...hookBackward] = backwards;
  return {
    signature,
    graph,
    forward,
    backward: main?.program ?? null,
    paramNames,
    saved: [...saved],
    scratch,
    backwardScratch: main?.scratch ?? [],
    hookBackward,
    grad,
    paramDerived,
    derived: new Map(),
  };
}
