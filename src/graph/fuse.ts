/**
 * Fusion: turns the captured steps of a program into fewer kernels.
 *
 *  - Elementwise chains: a mapKernel step whose output is read by exactly one other mapKernel step, at
 *    the same index (same shape, contiguous) and by nothing else (not a program output, not saved for
 *    the backward), is inlined into that consumer: its expression is re-emitted in the consumer's
 *    kernel and the intermediate never exists. Trees of such producers fuse too.
 *  - Matmul epilogue: a matmul whose output only feeds such an elementwise step (bias add, then an
 *    activation...) is emitted by matmulKernel with that chain as its epilogue, applied per output
 *    cell right after the dot product.
 *
 * Each fused kernel is built from the very definitions the ops used at capture (the `expr` of each
 * mapKernel, matmulKernel), evaluated in the same order on the same f32 values, so results match the
 * unfused kernels. Everything else (reductions, copies, gathers...) replays as captured. Steps whose
 * results nobody needs are dropped.
 */
import { KernelBuilder, StridedRef, isContiguous } from '../backend/kernel-builder';
import type { DeviceBuffer, KernelSpec } from '../backend/gpujs-backend';
import { matmulKernel, MatmulMeta } from '../ops/matmul';
import { numelOf, sameShape } from '../tensor/shape';
import type { MapMeta, Step, Value } from './capture';
import type { DirectLinearMeta } from '../backend/wasm/matmul-lowering';

export interface ExecStep {
  /** kernel spec as captured / built; its `inputs` are capture-time buffers, replaced by `inputs` at replay */
  spec: KernelSpec;
  /** value id per spec.inputs position */
  inputs: number[];
  out: number;
  /** the captured ops this kernel computes, in order (one unless fused) */
  ops: string[];
  fused: boolean;
  /** the captured step it stands for (a fused kernel: its last op); programs keep this order */
  at: number;
}

export interface Program {
  steps: ExecStep[];
  /** captured kernels before fusion / dead-step removal */
  captured: number;
}

function opName(s: Step): string {
  if (s.meta?.kind === 'map') return (s.meta as MapMeta).op;
  if (s.meta?.kind === 'matmul') return 'matmul';
  if ((s.meta as { kind?: string } | undefined)?.kind === 'direct-linear') return 'linear';
  return /\bfor \(/.test(s.spec.source) ? 'kernel(loop)' : 'kernel';
}

/** Reads the whole value at the consumer's own flat index: same shape, contiguous, from offset 0. */
function identityRead(ref: StridedRef, outShape: readonly number[], valueSize: number): boolean {
  return sameShape(ref.shape, outShape) && ref.offset === 0 && isContiguous(ref) && numelOf(ref.shape) === valueSize;
}

export function fuseProgram(steps: Step[], values: Value[], external: Set<number>, opts: { fuse: boolean }): Program {
  const byBuffer = new Map<DeviceBuffer, number>();
  for (const v of values) byBuffer.set(v.buffer, v.id);
  const producer = new Map<number, number>();
  steps.forEach((s, k) => producer.set(s.out, k));

  // dead steps: nothing downstream needs them
  const live = new Array<boolean>(steps.length).fill(false);
  const need = new Set(external);
  for (let k = steps.length - 1; k >= 0; k--) {
    if (!need.has(steps[k].out)) continue;
    live[k] = true;
    for (const v of steps[k].inputs) need.add(v);
  }
  const consumers = new Map<number, Set<number>>();
  steps.forEach((s, k) => {
    if (!live[k]) return;
    for (const v of s.inputs) {
      if (!consumers.has(v)) consumers.set(v, new Set());
      consumers.get(v)!.add(k);
    }
  });

  // fusedInto[k] = the step that absorbs step k
  const fusedInto = new Array<number>(steps.length).fill(-1);
  const hasMatmul = new Array<boolean>(steps.length).fill(false);
  // a relu whose only input is a direct linear's output (webasm): that linear's spec with relu applied
  const directRelu = new Map<number, KernelSpec>();
  if (opts.fuse) {
    steps.forEach((c, k) => {
      const meta = c.meta as MapMeta | undefined;
      const r = meta?.kind === 'map' && meta.op === 'relu' ? meta.inputs[0] : undefined;
      if (!live[k] || r === undefined || typeof r === 'number') return;
      const v = byBuffer.get(r.buffer);
      const p = v === undefined || external.has(v) ? undefined : producer.get(v);
      const pm = p === undefined ? undefined : (steps[p].meta as DirectLinearMeta | undefined);
      if (p === undefined || !live[p] || pm?.kind !== 'direct-linear' || consumers.get(v!)!.size !== 1) return;
      if (!identityRead(r, meta!.outShape, values[v!].size)) return;
      fusedInto[p] = k;
      directRelu.set(k, pm.withRelu());
    });
  }
  if (opts.fuse) {
    steps.forEach((c, k) => {
      if (!live[k] || c.meta?.kind !== 'map') return;
      const meta = c.meta as MapMeta;
      hasMatmul[k] = false;
      for (const r of meta.inputs) {
        if (typeof r === 'number') continue;
        const v = byBuffer.get(r.buffer);
        if (v === undefined || external.has(v)) continue;
        const p = producer.get(v);
        if (p === undefined || !live[p] || fusedInto[p] !== -1 || directRelu.has(p)) continue;
        const pm = steps[p].meta;
        if (!pm || (pm.kind !== 'map' && pm.kind !== 'matmul')) continue;
        if (steps[p].spec.native) continue; // a direct lowering (webasm matmul) takes no gpu.js epilogue
        if (consumers.get(v)!.size !== 1) continue;
        // every read of v by c must be an identity read
        const reads = meta.inputs.filter((x): x is StridedRef => typeof x !== 'number' && x.buffer === r.buffer);
        if (!reads.every((x) => identityRead(x, meta.outShape, values[v].size))) continue;
        const brings = pm.kind === 'matmul' || hasMatmul[p];
        if (brings && hasMatmul[k]) continue;
        fusedInto[p] = k;
        hasMatmul[k] = hasMatmul[k] || brings;
      }
    });
  }

  const out: ExecStep[] = [];
  steps.forEach((s, k) => {
    if (!live[k] || fusedInto[k] !== -1) return;
    const linear = directRelu.get(k);
    if (linear) {
      const p = steps.findIndex((_, j) => fusedInto[j] === k);
      out.push({ spec: linear, inputs: steps[p].inputs, out: s.out, ops: ['linear', 'relu'], fused: true, at: k });
      return;
    }
    const members = collect(k, steps, fusedInto);
    if (members.length === 1) {
      out.push({ spec: s.spec, inputs: s.inputs, out: s.out, ops: [opName(s)], fused: false, at: k });
      return;
    }
    const emitGroup = (): boolean => {
      let spec: KernelSpec;
      try {
        spec = buildFused(k, steps, fusedInto, byBuffer);
      } catch {
        return false;
      }
      const group = collect(k, steps, fusedInto);
      const inputs = spec.inputs.map((b) => {
        const v = byBuffer.get(b);
        if (v === undefined) throw new Error('internal: fused kernel reads a buffer the capture did not see');
        return v;
      });
      out.push({ spec, inputs, out: s.out, ops: group.map((m) => opName(steps[m])), fused: group.length > 1, at: k });
      return true;
    };
    if (emitGroup()) return;
    // an op whose expression cannot live in a matmul epilogue (say it asks for the flat output index):
    // run the matmul on its own and fuse the elementwise rest; failing that, keep the kernels as captured
    const mm = members.find((m) => steps[m].meta?.kind === 'matmul');
    if (mm !== undefined) {
      fusedInto[mm] = -1;
      out.push({ spec: steps[mm].spec, inputs: steps[mm].inputs, out: steps[mm].out, ops: ['matmul'], fused: false, at: mm });
      if (emitGroup()) return;
    }
    for (const m of collect(k, steps, fusedInto))
      out.push({ spec: steps[m].spec, inputs: steps[m].inputs, out: steps[m].out, ops: [opName(steps[m])], fused: false, at: m });
  });
  return { steps: out, captured: steps.length };
}

/** Steps of the group rooted at k, producers first. */
function collect(k: number, steps: Step[], fusedInto: number[]): number[] {
  const out: number[] = [];
  const visit = (j: number) => {
    steps.forEach((_, p) => {
      if (fusedInto[p] === j) visit(p);
    });
    out.push(j);
  };
  visit(k);
  return out;
}

/** One kernel for the group rooted at `root`: the matmul (if any) with the elementwise tree as its epilogue. */
function buildFused(root: number, steps: Step[], fusedInto: number[], byBuffer: Map<DeviceBuffer, number>): KernelSpec {
  const members = collect(root, steps, fusedInto);
  const mm = members.find((m) => steps[m].meta?.kind === 'matmul');
  const producerOf = (r: StridedRef): number | undefined => {
    const v = byBuffer.get(r.buffer);
    const p = members.find((m) => steps[m].out === v && m !== root);
    return p !== undefined && fusedInto[p] !== -1 ? p : undefined;
  };
  const rootMeta = steps[root].meta as MapMeta;
  // scalar arguments are shared by every copy of the tree (the tiled matmul emits its epilogue per row)
  const scalars = new Map<number, string>();
  /** emits the tree's expressions; `read` gives an input ref's value at the current cell */
  const emitTree = (kb: KernelBuilder, read: (r: StridedRef) => string, acc: string | null): string => {
    const vars = new Map<number, string>();
    const emit = (j: number): string => {
      if (vars.has(j)) return vars.get(j)!;
      if (steps[j].meta?.kind === 'matmul') return acc!;
      const meta = steps[j].meta as MapMeta;
      const xs = meta.inputs.map((r, q) => {
        if (typeof r === 'number') {
          const key = j * 1000 + q;
          if (!scalars.has(key)) scalars.set(key, kb.scalar(r));
          return scalars.get(key)!;
        }
        const p = producerOf(r);
        return p !== undefined ? emit(p) : kb.let(read(r), 'x');
      });
      const v = kb.let(meta.expr(xs, kb), 'f');
      vars.set(j, v);
      return v;
    };
    return emit(root);
  };
  let kb: KernelBuilder;
  let result: string;
  if (mm !== undefined) {
    const m = steps[mm].meta as unknown as MatmulMeta;
    const mk = matmulKernel(
      m.a,
      m.b,
      { batch: m.batch, M: m.M, K: m.K, N: m.N, device: m.device },
      {
        epilogue: (acc, k, outIdx) => emitTree(k, (r) => k.readAt(r, outIdx), acc),
      },
    );
    kb = mk;
    result = mk.result;
  } else {
    const backend = (rootMeta.inputs.find((r) => typeof r !== 'number') as StridedRef | undefined)?.buffer.backend;
    kb = new KernelBuilder(rootMeta.outShape, undefined, { rowGrid: backend?.prefersRowGrid ?? false });
    result = emitTree(kb, (r) => kb.read(r), null);
  }
  kb.meta = undefined;
  return kb.build(result);
}
