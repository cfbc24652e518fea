/** Writing an ONNX file (Node only; exportBytes is the portable form). */
import { writeFile } from 'fs/promises';
import type { Tensor } from '../tensor/tensor';
import type { Module } from '../nn/module';
import { exportBytes, ExportOptions } from './export';

/** Traces `model` on `exampleInputs` and writes the ONNX model to `path`. */
export async function exportModel(model: Module, exampleInputs: Tensor[], path: string, opts: ExportOptions = {}): Promise<void> {
  await writeFile(path, exportBytes(model, exampleInputs, opts));
}
