/**
 * `DataLoader(dataset, { batchSize, shuffle, seed, dropLast, collate })`, as PyTorch's: iterate it once per
 * epoch for mini-batches. Sync iteration (`for ... of`) builds each batch when asked; async iteration
 * (`for await`) builds the next batch in a macrotask as soon as the current one is handed out, so it is
 * ready when the training step yields to the event loop (e.g. `await loss.data()`).
 */
import { Generator, randperm } from '../tensor/random';
import type { DeviceName } from '../backend/device';
import { Dataset, DatasetLike } from './dataset';
import { Collate, DefaultBatch, defaultCollate, disposeBatch } from './collate';

export interface DataLoaderOptions<T, B> {
  batchSize?: number;
  /** a new random order every epoch */
  shuffle?: boolean;
  /** seeds the loader's own generator (the global one, `manualSeed`, is neither read nor advanced) */
  seed?: number;
  /** drop a last batch smaller than batchSize */
  dropLast?: boolean;
  /** samples -> batch; default: PyTorch's default_collate */
  collate?: Collate<T, B>;
  /** where the default collate puts its tensors (default: the default device) */
  device?: DeviceName;
}

const macrotask: (f: () => void) => void = typeof setImmediate === 'function' ? (f) => setImmediate(f) : (f) => setTimeout(f, 0);

export class DataLoader<T = unknown, B = DefaultBatch<T>> implements Iterable<B>, AsyncIterable<B> {
  readonly dataset: DatasetLike<T>;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly generator?: Generator;
  private readonly collate?: Collate<T, B>;
  private readonly device?: DeviceName;

  constructor(dataset: DatasetLike<T>, opts: DataLoaderOptions<T, B> = {}) {
    if (!(dataset instanceof Dataset) && !Array.isArray(dataset))
      throw new TypeError('DataLoader: dataset must be a data.Dataset or an array of samples');
    const { batchSize = 1, shuffle = false, seed, dropLast = false, collate, device } = opts;
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    if (seed !== undefined && !Number.isInteger(seed)) throw new RangeError(`DataLoader: seed must be an integer, got ${seed}`);
    if (collate !== undefined && typeof collate !== 'function') throw new TypeError('DataLoader: collate must be a function');
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.generator = seed === undefined ? undefined : new Generator(seed);
    this.collate = collate;
    this.device = device;
  }

  private get size(): number {
    return this.dataset.length;
  }

  /** Batches per epoch. */
  get length(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  private epochOrder(): number[] {
    return this.shuffle ? randperm(this.size, this.generator) : Array.from({ length: this.size }, (_, i) => i);
  }

  private batch(order: number[], k: number): B {
    const indices = order.slice(k * this.batchSize, (k + 1) * this.batchSize);
    const ds = this.dataset;
    if (!this.collate && ds instanceof Dataset && ds.getBatch) return ds.getBatch(indices) as B;
    const samples = indices.map((i) => (ds instanceof Dataset ? ds.getItem(i) : ds[i]));
    return this.collate ? this.collate(samples) : (defaultCollate(samples, this.device) as B);
  }

  *[Symbol.iterator](): Iterator<B> {
    const order = this.epochOrder();
    for (let k = 0, n = this.length; k < n; k++) yield this.batch(order, k);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<B> {
    const order = this.epochOrder();
    const n = this.length;
    const later = (k: number) => {
      const p = new Promise<B>((resolve, reject) =>
        macrotask(() => {
          try {
            resolve(this.batch(order, k));
          } catch (e) {
            reject(e);
          }
        }),
      );
      p.catch(() => undefined); // rejection is seen where it is awaited
      return p;
    };
    let next: Promise<B> | undefined = n > 0 ? later(0) : undefined;
    try {
      for (let k = 0; k < n; k++) {
        const current: B = await next!;
        next = k + 1 < n ? later(k + 1) : undefined;
        yield current;
      }
    } finally {
      // the consumer stopped early: free the batch built ahead for it
      if (next) disposeBatch(await next.catch(() => undefined));
    }
  }
}
