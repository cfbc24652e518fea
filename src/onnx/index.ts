/** `onnx`: export a model to a standard ONNX file for deployment on other engines (ONNX Runtime...). */
export { exportBytes, OPSET_VERSION, IR_VERSION } from './export';
export type { ExportOptions } from './export';
export { exportModel } from './file';
export { ExportError } from './trace';
export { decodeModel } from './proto';
