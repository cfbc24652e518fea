/**
 * The export-time tracer. It runs the model's forward once on the example inputs (in eval mode, grad
 * mode on) while an op observer (autograd/node.ts `opTrace`) sees every op at the level users write
 * them — add, matmul, conv2d, softmax, reshape... — with its attributes, and lowers each to ONNX nodes
 * (lowering.ts). Layers are plain TypeScript over those ops, so built-in layers and user modules
 * export the same way, and a module path (from forward hooks) names where an op came from. The few
 * layers ONNX has as a single op (LayerNorm, BatchNorm in eval mode: layers.ts) become that op.
 *
 * Like torch.onnx's tracer, this records what ran for these inputs: data-dependent control flow
 * (`if (x.sum().item() > 0)`) is frozen to the branch taken, and every shape is the traced one.
 *
 * Values: each traced tensor maps to an ONNX value name. A tensor the exporter did not see made is
 * a constant (an initializer named by its state-dict key when it is a parameter or buffer) — unless it
 * was computed from the inputs by a kernel outside the observed ops (under noGrad, say): a kernel
 * tracer marks every buffer computed from the inputs, and using such a tensor is an error naming the
 * module, never a silently frozen value. A traced tensor overwritten in place since is an error too.
 * An op without ONNX export is an error when its result is used (see `deferred`), naming the module
 * it ran in.
 */
import { Tensor } from '../tensor/tensor';
import type { Storage } from '../tensor/storage';
import { opTrace, OpAttrs } from '../autograd/node';
import { enableGrad, noGrad } from '../autograd/grad-mode';
import { DeviceBuffer, KernelSpec, KernelTracer, tracing } from '../backend/gpujs-backend';
import { rngStats } from '../tensor/random';
import type { Module } from '../nn/module';
import { fmtShape } from '../tensor/shape';
import { GraphBuilder } from './graph-builder';
import { lowerOp, LowerContext, UnsupportedOp } from './lowering';
import { layerLowering } from './layers';

interface Traced {
  name: string;
  storage: Storage;
  version: number;
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

/** Marks every device buffer computed (by any kernel) from the example inputs. */
class TaintTracer implements KernelTracer {
  readonly tainted = new WeakSet<DeviceBuffer>();
  onRun(spec: KernelSpec, out: DeviceBuffer): void {
    if (spec.inputs.some((b) => this.tainted.has(b))) this.tainted.add(out);
  }
  onUpload(): void {}
  onRead(): void {}
}

export interface TraceResult {
  builder: GraphBuilder;
  inputs: { name: string; shape: number[] }[];
  outputs: { name: string; shape: number[]; value: Tensor }[];
}

export class ExportError extends Error {}

export function traceModel(model: Module, inputs: Tensor[], names: { inputs: string[]; outputs?: string[] }): TraceResult {
  if (opTrace.observer || tracing.tracer) throw new ExportError('onnx export: another export or an nn.compile capture is already running');
  const b = new GraphBuilder();
  for (const n of [...names.inputs, ...(names.outputs ?? [])]) b.fresh(n); // reserve the user's names
  const traced = new Map<Tensor, Traced>();
  const byStorage = new Map<Storage, Traced[]>();
  const consts = new Map<Tensor, string>();
  const stateNames = new Map<Tensor, string>();
  for (const [n, t] of [...model.namedParameters(), ...model.namedBuffers()]) stateNames.set(t, n);

  const remember = (t: Tensor, name: string) => {
    const v: Traced = { name, storage: t.storage, version: t.storage.version, shape: [...t.shape], strides: [...t.strides], offset: t.offset };
    traced.set(t, v);
    const list = byStorage.get(t.storage) ?? [];
    list.push(v);
    byStorage.set(t.storage, list);
  };
  const taint = new TaintTracer();
  inputs.forEach((t, k) => {
    remember(t, names.inputs[k]);
    taint.tainted.add(t.storage.buffer);
  });

  // module paths, from hooks on every module ('' is the model itself)
  const scopes: { path: string; cls: string }[] = [];
  const where = () => {
    const s = scopes[scopes.length - 1];
    return !s ? `${model.constructor.name}` : s.path ? `module '${s.path}' (${s.cls})` : `the model (${s.cls})`;
  };
  // layers ONNX has as one op (LayerNormalization, BatchNormalization): their inner ops are not
  // reported (suppressed > 0); the layer's output is lowered from its input when it returns
  let suppressed = 0;
  const fusedLayer = new Map<Module, boolean>();
  const handles = model.namedModules().flatMap(([path, m]) => [
    m.registerForwardPreHook((_m, args) => {
      scopes.push({ path, cls: m.constructor.name });
      const fuse = !failure && suppressed === 0 && args[0] instanceof Tensor && !!layerLowering(m);
      fusedLayer.set(m, fuse);
      if (fuse) suppressed++;
    }),
    m.registerForwardHook((_m, args, out) => {
      if (fusedLayer.get(m)) {
        suppressed--;
        if (!failure && out instanceof Tensor) {
          try {
            const cx: LowerContext = { b, val: (t) => val(t, m.constructor.name), scope: path };
            remember(out, layerLowering(m)!(cx, args[0] as Tensor));
          } catch (e) {
            defer(out, e);
          }
        }
      }
      scopes.pop();
    }),
  ]);

  let failure: ExportError | null = null;
  const fail = (msg: string) => {
    failure ??= new ExportError(`onnx export: ${where()}: ${msg}`);
  };
  // An op that cannot be exported fails only if its result is used: an op may run ops of its own in
  // grad mode before it records (sum's reshape of its kernel output), and those inner steps are
  // superseded by the op's own record. Keyed by storage, so views of the result carry the reason.
  const deferred = new WeakMap<Storage, ExportError>();
  const defer = (out: Tensor, e: unknown) => {
    if (e instanceof ExportError) deferred.set(out.storage, e);
    else if (e instanceof UnsupportedOp) deferred.set(out.storage, new ExportError(`onnx export: ${where()}: ${e.message}`));
    else throw e;
  };
  const sameView = (v: Traced, t: Tensor) =>
    v.offset === t.offset && v.shape.length === t.ndim && v.shape.every((d, i) => d === t.shape[i]) && v.strides.every((s, i) => s === t.strides[i]);

  const val = (t: Tensor, op: string): string => {
    // the tensor itself, or another tensor over the same data (detach())
    const v = traced.get(t) ?? byStorage.get(t.storage)?.find((c) => sameView(c, t));
    if (v) {
      if (t.storage.version !== v.version)
        throw new UnsupportedOp(
          `op '${op}' reads a tensor of shape ${fmtShape(t.shape)} that was modified in place after it was computed; in-place writes into traced values cannot be exported`,
        );
      return v.name;
    }
    if (taint.tainted.has(t.storage.buffer)) {
      const why = deferred.get(t.storage);
      if (why) throw why;
      throw new UnsupportedOp(
        `op '${op}' reads a tensor of shape ${fmtShape(t.shape)} computed from the inputs by something the exporter cannot see ` +
          `(code run under noGrad(), or an op without ONNX support); it would be frozen to the example's value`,
      );
    }
    let name = consts.get(t);
    if (!name) {
      const data = noGrad(() => t.contiguous().dataSync());
      name = b.floatInitializer(stateNames.get(t) ?? 'const', t.shape, Float32Array.from(data));
      consts.set(t, name);
    }
    return name;
  };

  let draws = rngStats.draws;
  opTrace.observer = (out: Tensor, name: string, ins: readonly (Tensor | null | undefined)[], attrs: OpAttrs) => {
    if (failure || suppressed > 0) return;
    if (rngStats.draws !== draws) {
      fail(`the forward draws random numbers (rand, randn, dropout in training mode); a trace would freeze them`);
      return;
    }
    try {
      const s = scopes[scopes.length - 1];
      const cx: LowerContext = { b, val: (t) => val(t, name), scope: s?.path ?? '' };
      remember(out, lowerOp(cx, name, out, ins, attrs));
    } catch (e) {
      defer(out, e);
    }
    draws = rngStats.draws;
  };
  tracing.tracer = taint;
  const training = model.modules().map((m) => [m, m.training] as const);
  let result: unknown;
  try {
    model.eval();
    result = enableGrad(() => model(...inputs));
  } finally {
    opTrace.observer = null;
    tracing.tracer = null;
    for (const h of handles) h.remove();
    for (const [m, on] of training) m.training = on;
  }
  if (failure) throw failure;
  if (rngStats.draws !== draws)
    throw new ExportError(`onnx export: the forward of ${model.constructor.name} draws random numbers; a trace would freeze them`);

  const outs = result instanceof Tensor ? [result] : Array.isArray(result) ? result.filter((t) => t !== null) : null;
  if (!outs || !outs.every((t) => t instanceof Tensor)) {
    throw new ExportError(
      `onnx export: the forward of ${model.constructor.name} must return a Tensor or an array of Tensors, got ${result === null ? 'null' : typeof result}`,
    );
  }
  const outNames = names.outputs ?? (outs.length === 1 ? ['output'] : outs.map((_, k) => `output_${k}`));
  if (outNames.length !== outs.length) throw new ExportError(`onnx export: ${outNames.length} output name(s) given for ${outs.length} output(s)`);
  if (!names.outputs) outNames.forEach((n) => b.fresh(n));
  const renamed = new Map<string, string>();
  const outputs = outs.map((t: Tensor, k) => {
    let name: string;
    try {
      name = val(t, 'output');
    } catch (e) {
      if (e instanceof ExportError) throw e;
      throw new ExportError(`onnx export: output ${k} of ${model.constructor.name}: ${(e as Error).message}`);
    }
    name = renamed.get(name) ?? name;
    const own = b.producedByNode(name) && !names.inputs.includes(name) && !outNames.includes(name);
    if (own) {
      b.rename(name, outNames[k]);
      renamed.set(name, outNames[k]);
    } else b.nodes.push({ op_type: 'Identity', name: b.fresh(`Identity_${outNames[k]}`), input: [name], output: [outNames[k]], attribute: [] });
    return { name: outNames[k], shape: [...t.shape], value: t };
  });
  return { builder: b, inputs: inputs.map((t, k) => ({ name: names.inputs[k], shape: [...t.shape] })), outputs };
}
