import { expect } from 'chai';
import { data, tensor, arange, manualSeed, random, Tensor } from '../../src';

/** A dataset that records which samples were asked for, and when. */
class Recording extends data.Dataset<{ x: number[]; y: number }> {
  readonly asked: number[] = [];
  constructor(private readonly n: number) {
    super();
  }
  get length() {
    return this.n;
  }
  getItem(i: number) {
    this.asked.push(i);
    return { x: [i, 10 * i], y: i % 3 };
  }
}

const rows = (t: Tensor) => t.toArray() as number[][];

describe('data: Dataset, TensorDataset, DataLoader', () => {
  it('TensorDataset: sample i is row i of every tensor; the loader gathers batches of them', () => {
    const x = arange(0, 12).reshape([6, 2]);
    const y = tensor([5, 4, 3, 2, 1, 0]);
    const ds = data.TensorDataset(x, y);
    expect(ds.length).to.equal(6);
    const [xi, yi] = ds.getItem(4);
    expect(xi.toArray()).to.deep.equal([8, 9]);
    expect(yi.item()).to.equal(1);
    const batches = [...data.DataLoader(ds, { batchSize: 4 })];
    expect(batches.length).to.equal(2);
    expect(rows(batches[0][0])).to.deep.equal([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    expect(batches[0][1].toArray()).to.deep.equal([5, 4, 3, 2]);
    expect(rows(batches[1][0])).to.deep.equal([
      [8, 9],
      [10, 11],
    ]);
    expect(batches[1][1].toArray()).to.deep.equal([1, 0]);
  });

  it('TensorDataset: mismatched sizes and bad indices are clear errors', () => {
    expect(() => data.TensorDataset(arange(0, 6).reshape([3, 2]), tensor([1, 2]))).to.throw(
      'TensorDataset: every tensor needs the same size in dim 0, got [3, 2], [2]',
    );
    expect(() => data.TensorDataset(tensor([1, 2])).getItem(2)).to.throw('TensorDataset: index 2 is out of range for 2 samples');
    expect(() => data.TensorDataset(tensor([1, 2])).getItem(0.5)).to.throw(/index 0.5 is out of range/);
  });

  it('shuffle: every sample exactly once per epoch, a new order each epoch, reproducible with a seed', () => {
    const ds = new Recording(10);
    const loader = data.DataLoader(ds, { batchSize: 3, shuffle: true, seed: 7 });
    const epoch = () => [...loader].flatMap((b: { y: Tensor; x: Tensor }) => rows(b.x).map((r) => r[0]));
    const e1 = epoch();
    const e2 = epoch();
    expect([...e1].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...e2].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(e1).to.not.deep.equal(e2);
    expect(e1).to.not.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const again = data.DataLoader(new Recording(10), { batchSize: 3, shuffle: true, seed: 7 });
    expect([...again].flatMap((b: { x: Tensor }) => rows(b.x).map((r) => r[0]))).to.deep.equal(e1);
  });

  it('a seeded loader neither reads nor advances the global generator', () => {
    manualSeed(3);
    const expected = [random(), random()];
    manualSeed(3);
    Array.from(data.DataLoader(new Recording(20), { batchSize: 4, shuffle: true, seed: 1 }));
    expect([random(), random()]).to.deep.equal(expected);
  });

  it('without a seed, shuffling follows manualSeed like PyTorch follows torch.manual_seed', () => {
    const order = () => {
      manualSeed(11);
      return [...data.DataLoader(new Recording(8), { batchSize: 8, shuffle: true })].map((b: { y: Tensor; x: Tensor }) =>
        rows(b.x).map((r) => r[0]),
      )[0];
    };
    expect(order()).to.deep.equal(order());
  });

  it('dropLast and length', () => {
    const ds = new Recording(10);
    expect(data.DataLoader(ds, { batchSize: 4 }).length).to.equal(3);
    expect(data.DataLoader(ds, { batchSize: 4, dropLast: true }).length).to.equal(2);
    const sizes = [...data.DataLoader(ds, { batchSize: 4, dropLast: true })].map((b: { y: Tensor }) => b.y.shape[0]);
    expect(sizes).to.deep.equal([4, 4]);
    expect([...data.DataLoader(ds, { batchSize: 4 })].map((b: { y: Tensor }) => b.y.shape[0])).to.deep.equal([4, 4, 2]);
  });

  it('default collate: objects field by field, numbers and numeric arrays become tensors with the batch first', () => {
    const [b] = [...data.DataLoader(new Recording(3), { batchSize: 3 })];
    expect(rows(b.x)).to.deep.equal([
      [0, 0],
      [1, 10],
      [2, 20],
    ]);
    expect(b.y.toArray()).to.deep.equal([0, 1, 2]);
    const tuples = [
      [Float32Array.from([1, 2]), 3],
      [Float32Array.from([4, 5]), 6],
    ];
    const [[x, y]] = [...data.DataLoader(tuples, { batchSize: 2 })];
    expect(rows(x)).to.deep.equal([
      [1, 2],
      [4, 5],
    ]);
    expect(y.toArray()).to.deep.equal([3, 6]);
    const [stacked] = [...data.DataLoader([tensor([[1, 2]]), tensor([[3, 4]])], { batchSize: 2 })];
    expect(stacked.shape).to.deep.equal([2, 1, 2]);
    expect(() => [...data.DataLoader(['a', 'b'], { batchSize: 2 })]).to.throw(/cannot collate samples of type string/);
  });

  it('a custom collate receives the samples of each batch', () => {
    const seen: number[][] = [];
    const loader = data.DataLoader(new Recording(5), {
      batchSize: 2,
      collate: (samples) => {
        seen.push(samples.map((s) => s.y));
        return samples.length;
      },
    });
    expect([...loader]).to.deep.equal([2, 2, 1]);
    expect(seen).to.deep.equal([[0, 1], [2, 0], [1]]);
  });

  it('rejects bad options with the option named', () => {
    expect(() => data.DataLoader(new Recording(3), { batchSize: 0 })).to.throw('DataLoader: batchSize must be a positive integer, got 0');
    expect(() => data.DataLoader(new Recording(3), { seed: 1.5 })).to.throw('DataLoader: seed must be an integer, got 1.5');
    expect(() => data.DataLoader(5 as never)).to.throw(/dataset must be a data.Dataset or an array/);
  });

  it('async iteration gives the same batches and builds the next one while the consumer awaits', async () => {
    const syncDs = new Recording(7);
    const syncBatches = [...data.DataLoader(syncDs, { batchSize: 3, shuffle: true, seed: 5 })].map((b: { x: Tensor }) => rows(b.x));
    const ds = new Recording(7);
    const got: number[][][] = [];
    const askedWhenHandedOut: number[] = [];
    for await (const b of data.DataLoader(ds, { batchSize: 3, shuffle: true, seed: 5 })) {
      askedWhenHandedOut.push(ds.asked.length);
      got.push(rows((b as { x: Tensor }).x));
      await new Promise((r) => setImmediate(r)); // the training step yields (e.g. await loss.data())
      // by now the next batch has been built
      expect(ds.asked.length).to.equal(Math.min(7, 3 * (got.length + 1)));
    }
    expect(got).to.deep.equal(syncBatches);
    expect(askedWhenHandedOut).to.deep.equal([3, 6, 7]);
  });

  it('async iteration stopped early frees the batch it built ahead', async () => {
    const x = arange(0, 8).reshape([4, 2]);
    let first: Tensor[] | undefined;
    let ahead: Tensor[] | undefined;
    const ds = data.TensorDataset(x);
    const getBatch = ds.getBatch.bind(ds);
    ds.getBatch = (idx: number[]) => {
      const b = getBatch(idx);
      if (first) ahead = b;
      else first = b;
      return b;
    };
    for await (const _ of data.DataLoader(ds, { batchSize: 2 })) break;
    expect(first![0].isDisposed).to.equal(false);
    expect(ahead, 'the second batch was built ahead').to.not.equal(undefined);
    expect(ahead![0].isDisposed).to.equal(true);
  });

  it('async iteration reports an error of the dataset where the batch is awaited', async () => {
    const ds = new Recording(4);
    ds.getItem = (i: number) => {
      if (i === 2) throw new Error('bad sample 2');
      return { x: [i, i], y: 0 };
    };
    let n = 0;
    let error: Error | undefined;
    try {
      for await (const _ of data.DataLoader(ds, { batchSize: 2 })) n++;
    } catch (e) {
      error = e as Error;
    }
    expect(n).to.equal(1);
    expect(error?.message).to.equal('bad sample 2');
  });
});
