/** ONNX export: a traced forward (trace.ts) encoded as a standard ONNX ModelProto (opset 18). */
import { Tensor } from '../tensor/tensor';
import { Module } from '../nn/module';
import type { CompiledModule } from '../graph/compile';
import { DataType, encodeModel } from './proto';
import { ExportError, traceModel } from './trace';

/** The default ONNX operator set written, and the IR version that goes with it (ONNX 1.13). */
export const OPSET_VERSION = 18;
export const IR_VERSION = 8;

export interface ExportOptions {
  /** graph input names (default `input`, or `input_0`, `input_1`, ... for several) */
  inputNames?: string[];
  /** graph output names (default `output`, or `output_0`, ... for several) */
  outputNames?: string[];
}

function valueInfo(name: string, shape: number[]) {
  return { name, type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: shape.map((d) => ({ dim_value: d })) } } } };
}

/**
 * The model as ONNX bytes (works in browsers: no file system). The forward runs once on
 * `exampleInputs`, in eval mode; the graph has their shapes. Inputs and outputs are float32, as tsnn's
 * tensors (integer ids for an Embedding are cast to int64 inside the graph).
 */
export function exportBytes(model: Module, exampleInputs: Tensor[], opts: ExportOptions = {}): Uint8Array {
  if (!(model instanceof Module)) throw new ExportError('onnx export: expected an nn.Module');
  // nn.compile(model) replays kernels; the model it wraps has the ops
  const compiled = model as unknown as Partial<CompiledModule<Module>>;
  if (compiled.compileStats && compiled.original instanceof Module) model = compiled.original;
  if (!Array.isArray(exampleInputs) || !exampleInputs.length || !exampleInputs.every((t) => t instanceof Tensor)) {
    throw new ExportError('onnx export: exampleInputs must be a non-empty array of Tensors (one per forward argument)');
  }
  const inputNames = opts.inputNames ?? (exampleInputs.length === 1 ? ['input'] : exampleInputs.map((_, k) => `input_${k}`));
  if (inputNames.length !== exampleInputs.length)
    throw new ExportError(`onnx export: ${inputNames.length} input name(s) given for ${exampleInputs.length} input(s)`);
  const { builder, inputs, outputs } = traceModel(model, exampleInputs, { inputs: inputNames, outputs: opts.outputNames });
  return encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET_VERSION }],
    producer_name: 'tsnn',
    graph: {
      name: model.constructor.name,
      node: builder.nodes,
      initializer: builder.initializers,
      input: inputs.map((i) => valueInfo(i.name, i.shape)),
      output: outputs.map((o) => valueInfo(o.name, o.shape)),
    },
  });
}
