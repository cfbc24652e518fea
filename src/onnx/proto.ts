/**
 * The ONNX schema (the vendored official onnx.proto, as a protobufjs descriptor) and the encode/decode
 * of ModelProto through protobufjs: no hand-written wire format.
 */
import * as protobuf from 'protobufjs/light';
import { ONNX_DESCRIPTOR } from './onnx-descriptor';

let modelType: protobuf.Type | null = null;

/** onnx.ModelProto, loaded once. Field names are the .proto's own (snake_case: ir_version, opset_import). */
export function modelProto(): protobuf.Type {
  modelType ??= protobuf.Root.fromJSON(ONNX_DESCRIPTOR as protobuf.INamespace).lookupType('onnx.ModelProto');
  return modelType;
}

/** TensorProto.DataType values the exporter writes. */
export const DataType = { FLOAT: 1, BOOL: 9, INT64: 7 } as const;

/** AttributeProto.AttributeType values the exporter writes. */
export const AttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

export function encodeModel(model: Record<string, unknown>): Uint8Array {
  const type = modelProto();
  const problem = type.verify(model);
  if (problem) throw new Error(`internal: ONNX model does not fit the schema: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/** Decodes an ONNX file into plain objects (longs as numbers, bytes as Uint8Array). */
export function decodeModel(bytes: Uint8Array): Record<string, any> {
  const type = modelProto();
  return type.toObject(type.decode(bytes), { longs: Number, defaults: false, arrays: true });
}
