/** `window.tsnnDemo`, the browser demo's API (page/main.ts implements it; the browser test drives it). No DOM types here. */
import type { DeviceName, DeviceSpec } from '../../src';
import type { TrainOptions, EpochInfo } from './page/trainer';

export interface TrainRequest extends Partial<TrainOptions> {
  /** where to train ('auto' by default: the page's current device) */
  deviceSpec?: DeviceSpec;
}

export interface DemoApi {
  /** resolves once the digits are loaded */
  ready: Promise<void>;
  readonly device: DeviceName;
  deviceReport(): { device: DeviceName; ok: boolean; why?: string; renderer?: string }[];
  useDevice(spec: DeviceSpec): DeviceName;
  /** trains a fresh MLP; resolves when done (or stopped) */
  train(req?: TrainRequest): Promise<{ device: DeviceName; history: EpochInfo[]; testAccuracy: number; seconds: number }>;
  stop(): void;
  /** class probabilities of 784 pixel values in [0, 1] */
  predict(pixels: ArrayLike<number>): { digit: number; probs: number[] };
  testDigit(i: number): { pixels: number[]; label: number };
  testSize(): number;
  /** test accuracy of the current model */
  evaluate(): number;
  /** safetensors bytes (as `npm run mnist` writes) into the MLP; resolves with the keys and the test accuracy */
  loadWeights(bytes: Uint8Array | number[]): Promise<{ keys: string[]; testAccuracy: number }>;
  saveWeights(): Uint8Array;
}
