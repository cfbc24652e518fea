/** Runs exported ONNX bytes in ONNX Runtime (onnxruntime-node, CPU) and compares with tsnn's outputs. */
import { expect } from 'chai';
import { Module, Tensor, noGrad, onnx } from '../../src';

const ort = require('onnxruntime-node');

/** The model's outputs in ONNX Runtime for `inputs`, by output name. */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(bytes);
  const ortFeeds: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', Float32Array.from(t.dataSync()), [...t.shape]);
  const res = await session.run(ortFeeds);
  const out: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const [name, v] of Object.entries(res) as [string, any][]) out[name] = { data: v.data as Float32Array, dims: [...v.dims].map(Number) };
  return out;
}

/** Largest |a - b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Exports `model` on `example`, then checks ONNX Runtime's output against tsnn's (eval mode) for each of
 * `checks` (same shapes as the example), within `tol`. Returns the exported bytes.
 */
export async function expectSameAsOrt(model: Module, example: Tensor[], checks: Tensor[][], tol = 1e-4): Promise<Uint8Array> {
  const training = model.training;
  const bytes = onnx.exportBytes(model, example);
  expect(model.training, 'export leaves the training flag as it was').to.equal(training);
  model.eval();
  for (const inputs of checks) {
    const want = noGrad(() => model(...inputs)) as Tensor;
    const names = inputs.length === 1 ? ['input'] : inputs.map((_, k) => `input_${k}`);
    const got = (await runOrt(bytes, Object.fromEntries(names.map((n, k) => [n, inputs[k]])))).output;
    expect(got.dims).to.deep.equal([...want.shape]);
    const d = maxAbsDiff(got.data, want.dataSync());
    expect(d, `max |onnxruntime - tsnn| = ${d}`).to.be.at.most(tol);
  }
  return bytes;
}
