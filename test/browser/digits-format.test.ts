/** The demo's packed digits (samples/browser/digits-format.ts): lossless against the `mnist` package, and bad files are refused. */
import { expect } from 'chai';
import { gunzipSync } from 'zlib';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadMnist } from '../../samples/mnist/data';
import { encodeDigits, decodeDigits } from '../../samples/browser/digits-format';
import { writeDigits, DIGITS_FILE } from '../../samples/browser/site';

describe('browser demo digits file', function () {
  this.timeout(120_000);
  const { train, test } = loadMnist();
  let bytes: Uint8Array;
  before(() => (bytes = encodeDigits(train, test)));

  it('decodes to exactly the Node sample split (every pixel and label)', () => {
    const back = decodeDigits(bytes);
    for (const [got, want] of [
      [back.train, train],
      [back.test, test],
    ]) {
      expect(got.n).to.equal(want.n);
      expect(Buffer.from(got.images.buffer).equals(Buffer.from(want.images.buffer))).to.equal(true);
      expect(Array.from(got.labels)).to.deep.equal(Array.from(want.labels));
    }
  });

  it('writes a gzipped file of under 2 MB that decodes to the same digits', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-digits-'));
    try {
      const file = writeDigits(dir);
      expect(path.basename(file)).to.equal(DIGITS_FILE);
      const gz = fs.readFileSync(file);
      expect(gz.length).to.be.below(2_000_000);
      const back = decodeDigits(new Uint8Array(gunzipSync(gz)));
      expect(back.test.n).to.equal(test.n);
      expect(Array.from(back.test.images.subarray(0, 784 * 3))).to.deep.equal(Array.from(test.images.subarray(0, 784 * 3)));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses truncated or foreign bytes with a clear error', () => {
    expect(() => decodeDigits(bytes.subarray(0, bytes.length - 1))).to.throw(/decodeDigits: .*bytes, the header implies/);
    expect(() => decodeDigits(new Uint8Array([1, 0, 0]))).to.throw(/decodeDigits: not a tsnn-mnist-u8-v1 file/);
    const foreign = new TextEncoder().encode('{"format":"other"}');
    const f = new Uint8Array(4 + foreign.length);
    new DataView(f.buffer).setUint32(0, foreign.length, true);
    f.set(foreign, 4);
    expect(() => decodeDigits(f)).to.throw(/format 'other'/);
  });
});
