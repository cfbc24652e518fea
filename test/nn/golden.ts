/** Loading the PyTorch golden files written by test/fixtures/gen_layers.py: nested arrays with infinities as strings. */
import * as fs from 'fs';
import { DeviceName, Tensor, tensor, NestedArray } from '../../src';
import { fixturePath } from '../helpers';

const NON_FINITE: Record<string, number> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };

export function golden<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(fixturePath(name), 'utf8'), (_k, v) => (typeof v === 'string' && v in NON_FINITE ? NON_FINITE[v] : v));
}

export const T = (data: NestedArray, device: DeviceName, requiresGrad = false): Tensor => tensor(data, { device, requiresGrad });

export function stateDictOf(sd: Record<string, NestedArray>, device: DeviceName): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, T(v, device)]));
}
