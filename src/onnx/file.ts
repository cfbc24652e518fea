/** Writing an ONNX file (Node only; exportBytes is the portable form). */
import type { Tensor } from '../tensor/tensor';
import type { Module } from '../nn/module';
import { exportBytes, ExportOptions } from './export';
import { writeFileAtomicAsync } from '../platform/files';

/** Traces `model` on `exampleInputs` and writes the ONNX model to `path` (atomically: platform/files.ts). */
export async function exportModel(model: Module, exampleInputs: Tensor[], path: string, opts: ExportOptions = {}): Promise<void> {
  await writeFileAtomicAsync(path, exportBytes(model, exampleInputs, opts));
}
