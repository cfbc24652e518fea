import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, tensor, zeros, nn } from '../../src';
import {
  saveFile,
  loadFile,
  saveFileAsync,
  loadFileAsync,
  loadFileWithMetadata,
  readHeader,
  serialize,
  deserialize,
  deserializeWithMetadata,
  SafetensorsError,
  SafetensorsDtype,
  MAX_HEADER_SIZE,
} from '../../src/io';
import { testDevices, fixture, fixturePath } from '../helpers';

// ---- helpers ---------------------------------------------------------------------------------------

const fromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const bitsOf = (t: Tensor) => Array.from(new Uint32Array(t.dataSync().buffer));
const isNaNBits = (b: number) => (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;

/** Exact float32 equality by bit pattern (so -0 and 0 differ); any NaN equals any NaN. */
function expectBits(actual: number[], expected: number[], what: string): void {
  expect(actual.length, `${what}: length`).to.equal(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (isNaNBits(a) && isNaNBits(e)) return;
    if (a !== e) {
      const f = (b: number) => fromBits([b])[0];
      expect.fail(`${what}: element ${i} is ${f(a)} (0x${a.toString(16)}), expected ${f(e)} (0x${e.toString(16)})`);
    }
  });
}

/** Byte equality with the first difference and both headers in the message. */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual[i] === expected[i]) i++;
  if (i === n && actual.length === expected.length) return;
  const head = (b: Uint8Array) => {
    const len = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
    return Buffer.from(b.subarray(8, 8 + len)).toString('utf8');
  };
  expect.fail(
    `${what}: bytes differ at offset ${i} (lengths ${actual.length} and ${expected.length})\nours:      ${head(actual)}\nreference: ${head(expected)}`,
  );
}

/** A safetensors buffer from a header (object or raw JSON text) and data, with an optional forced N. */
function build(header: object | string, data: Uint8Array | number = 0, opts: { n?: bigint; pad?: boolean } = {}): Uint8Array {
  let h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  if (opts.pad !== false) h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, opts.n ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

function expectThrows(fn: () => unknown, pattern: RegExp, tensorName?: string | null): SafetensorsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!err) expect.fail(`expected an error matching ${pattern}, but nothing was thrown`);
  expect(err, String(err)).to.be.instanceOf(SafetensorsError);
  const se = err as SafetensorsError;
  expect(se.message).to.match(pattern);
  if (tensorName !== undefined) expect(se.tensor, se.message).to.equal(tensorName);
  return se;
}

// one scratch directory for this file's tests, removed when the process exits
let tmpDir: string | null = null;
function tmp(name: string): string {
  if (tmpDir === null) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-safetensors-'));
    tmpDir = dir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return path.join(tmpDir, name);
}

// ---- the reference's own unit-test vectors (safetensors/src/tensor.rs) ------------------------------

describe('safetensors: reference byte vectors', () => {
  const six = [0, 1, 2, 3, 4, 5];
  it('serialize: one F32 tensor (test_serialization)', () => {
    const out = serialize({ 'attn.0': tensor(six, { shape: [1, 2, 3], device: 'cpu' }) });
    expectSameBytes(
      out,
      Uint8Array.from([
        64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34,
        115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48,
        44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
      ]),
      'attn.0',
    );
  });
  it('serialize: padding forces 8-byte alignment (test_serialization_forced_alignement)', () => {
    const out = serialize({ attn0: tensor(six, { shape: [1, 1, 2, 3], device: 'cpu' }) });
    expectSameBytes(
      out,
      Uint8Array.from([
        72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115,
        104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91,
        48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
      ]),
      'attn0',
    );
  });
  it('serialize: empty state dict, with and without metadata (test_empty)', () => {
    expectSameBytes(serialize({}), Uint8Array.from([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]), 'empty');
    expectSameBytes(
      serialize({}, { metadata: { framework: 'pt' } }),
      Uint8Array.from([
        40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114,
        107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
      ]),
      'empty with metadata',
    );
    expect(deserialize(serialize({}))).to.deep.equal({});
  });
  it('deserialize: the doc example (I32, unpadded header)', () => {
    const bytes = Buffer.concat([
      Buffer.from([60, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.from('{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}'),
      Buffer.alloc(16),
    ]);
    const sd = deserialize(bytes, { device: 'cpu' });
    expect(Object.keys(sd)).to.deep.equal(['test']);
    expect(sd.test.shape).to.deep.equal([2, 2]);
    expect(Array.from(sd.test.dataSync())).to.deep.equal([0, 0, 0, 0]);
  });
});

// ---- compatibility with files written by the reference format (PyTorch) ----------------------------

interface SampleFixture {
  file: string;
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: SafetensorsDtype; shape: number[]; f32_bits: number[] }>;
}
interface F32Fixture {
  cases: { file: string; metadata: Record<string, string> | null }[];
  tensors: { name: string; shape: number[]; f32_bits: number[] }[];
}
interface MixedFixture {
  file: string;
  metadata: Record<string, string>;
  tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; f32_bits: number[]; read_back_f32_bits: number[] }[];
}

for (const device of testDevices()) {
  describe(`safetensors on ${device}`, function () {
    this.timeout(60000);

    it('round-trips a state dict through a file', () => {
      const sd = {
        'hidden.weight': tensor(
          [
            [1, -2, 3.5],
            [4, 5e-20, -6e30],
          ],
          { device },
        ),
        'hidden.bias': tensor([0.25, -0.5], { device }),
        'bn.running_mean': zeros([3], { device }),
        scalar: tensor(7, { device }),
        empty: zeros([0, 4], { device }),
      };
      const file = tmp(`roundtrip-${device}.safetensors`);
      saveFile(sd, file);
      const back = loadFile(file, { device });
      expect(Object.keys(back)).to.deep.equal(['bn.running_mean', 'empty', 'hidden.bias', 'hidden.weight', 'scalar']);
      for (const [k, t] of Object.entries(sd)) {
        expect(back[k].shape, k).to.deep.equal(t.shape);
        expect(back[k].device, k).to.equal(device);
        expectBits(bitsOf(back[k]), bitsOf(t), k);
      }
      expect(fs.readdirSync(path.dirname(file)).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    });

    it('writes non-contiguous views as their values in C order', () => {
      const base = tensor(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        { device },
      );
      const sd = { t: base.transpose(0, 1), s: base.slice(1, 1, 3) };
      const back = deserialize(serialize(sd), { device });
      expect(back.t.toArray()).to.deep.equal([
        [1, 4],
        [2, 5],
        [3, 6],
      ]);
      expect(back.s.toArray()).to.deep.equal([
        [2, 3],
        [5, 6],
      ]);
    });

    it('reads the PyTorch-made sample (F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL) like .float() does', () => {
      const fx = fixture<SampleFixture>('safetensors_torch_sample.json');
      const res = loadFileWithMetadata(fixturePath(fx.file), { device });
      expect(res.metadata).to.deep.equal(fx.metadata);
      const names = Object.keys(fx.tensors);
      expect(Object.keys(res.stateDict).sort()).to.deep.equal([...names].sort());
      for (const name of names) {
        const want = fx.tensors[name];
        const t = res.stateDict[name];
        expect(t.shape, name).to.deep.equal(want.shape);
        expect(t.device, name).to.equal(device);
        expect(res.tensors[name].dtype, name).to.equal(want.dtype);
        expectBits(bitsOf(t), want.f32_bits, `${name} (${want.dtype})`);
      }
      expect(res.stateDict['bn.num_batches_tracked'].item()).to.equal(1234567);
    });

    it('reads the float32-write fixtures', () => {
      const fx = fixture<F32Fixture>('safetensors_f32_write.json');
      for (const c of fx.cases) {
        const back = loadFile(fixturePath(c.file), { device });
        for (const t of fx.tensors) {
          expect(back[t.name].shape, t.name).to.deep.equal(t.shape);
          expectBits(bitsOf(back[t.name]), t.f32_bits, `${c.file}: ${t.name}`);
        }
      }
    });

    it('restores tied weights to the same tensor', () => {
      const w = tensor(
        [
          [1, 2],
          [3, 4],
        ],
        { device },
      );
      const file = tmp(`tied-${device}.safetensors`);
      saveFile({ 'embed.weight': w, 'lm_head.weight': w, 'lm_head.bias': tensor([0, 1], { device }) }, file);
      const back = loadFile(file, { device });
      expect(Object.keys(back)).to.deep.equal(['embed.weight', 'lm_head.bias', 'lm_head.weight']);
      expect(back['lm_head.weight']).to.equal(back['embed.weight']);
      expect(back['embed.weight'].toArray()).to.deep.equal([
        [1, 2],
        [3, 4],
      ]);
    });

    it('a model with tied weights: stateDict -> saveFile -> loadFile -> loadStateDict', () => {
      const make = () => {
        const net = new nn.Sequential(new nn.Linear(3, 4), new nn.Linear(4, 3), new nn.Linear(3, 4));
        net.at(2).registerParameter('weight', (net.at(0) as nn.Linear).weight); // tie layer 2 to layer 0
        return net.to(device);
      };
      const src = make();
      const file = tmp(`model-${device}.safetensors`);
      saveFile(src.stateDict(), file);
      const header = readHeader(file);
      expect(Object.keys(header.tensors)).to.not.include('2.weight');
      expect(header.aliases).to.deep.equal({ '2.weight': '0.weight' });
      const dst = make();
      dst.loadStateDict(loadFile(file, { device }));
      const a = src.stateDict();
      const b = dst.stateDict();
      for (const k of Object.keys(a)) expectBits(bitsOf(b[k]), bitsOf(a[k]), k);
      const dst2 = make();
      dst2.loadStateDict(loadFile(file, { device, restoreAliases: false })); // loadStateDict excuses the dropped alias
      expectBits(bitsOf(dst2.stateDict()['2.weight']), bitsOf(a['0.weight']), '2.weight without alias restore');
    });

    it('async variants round-trip', async () => {
      const sd = { a: tensor([1, 2, 3], { device }), b: tensor([[0.5]], { device }) };
      const file = tmp(`async-${device}.safetensors`);
      await saveFileAsync(sd, file, { metadata: { note: 'async' } });
      expectSameBytes(fs.readFileSync(file), serialize(sd, { metadata: { note: 'async' } }), 'async bytes');
      const back = await loadFileAsync(file, { device });
      expect(back.a.toArray()).to.deep.equal([1, 2, 3]);
      expect(back.b.toArray()).to.deep.equal([[0.5]]);
    });
  });
}

describe('safetensors: byte-identical to the reference writer', () => {
  it('F32 state dicts (odd names, special values, 0-d and empty tensors), with and without metadata', () => {
    const fx = fixture<F32Fixture>('safetensors_f32_write.json');
    const sd: Record<string, Tensor> = {};
    for (const t of fx.tensors) sd[t.name] = tensor(fromBits(t.f32_bits), { shape: t.shape, device: 'cpu' });
    for (const c of fx.cases) {
      const ours = serialize(sd, c.metadata ? { metadata: c.metadata } : {});
      expectSameBytes(ours, fs.readFileSync(fixturePath(c.file)), c.file);
      const file = tmp(`f32-${path.basename(c.file)}`);
      saveFile(sd, file, c.metadata ? { metadata: c.metadata } : {});
      expectSameBytes(fs.readFileSync(file), fs.readFileSync(fixturePath(c.file)), `saveFile ${c.file}`);
    }
  });

  it('re-saving a loaded reference file reproduces it exactly', () => {
    for (const f of ['torch_f32_write.safetensors', 'torch_f32_nometa.safetensors']) {
      const bytes = fs.readFileSync(fixturePath(f));
      const res = deserializeWithMetadata(bytes, { device: 'cpu' });
      expectSameBytes(serialize(res.stateDict, res.metadata ? { metadata: res.metadata } : {}), bytes, f);
    }
  });

  it('F16/BF16/F64/I64/I32/I16/I8/U8/BOOL written from float32 exactly as torch .to(dtype) + save_file', () => {
    const fx = fixture<MixedFixture>('safetensors_mixed_write.json');
    const sd: Record<string, Tensor> = {};
    const dtypes: Record<string, SafetensorsDtype> = {};
    for (const t of fx.tensors) {
      sd[t.name] = tensor(fromBits(t.f32_bits), { shape: t.shape, device: 'cpu' });
      if (t.dtype !== 'F32') dtypes[t.name] = t.dtype;
    }
    const reference = fs.readFileSync(fixturePath(fx.file));
    expectSameBytes(serialize(sd, { metadata: fx.metadata, dtypes }), reference, fx.file);
    const back = deserializeWithMetadata(reference, { device: 'cpu' });
    for (const t of fx.tensors) {
      expect(back.tensors[t.name].dtype).to.equal(t.dtype);
      expectBits(bitsOf(back.stateDict[t.name]), t.read_back_f32_bits, `${t.name} read back from ${t.dtype}`);
    }
  });
});

// ---- writing options ---------------------------------------------------------------------------------

describe('safetensors: writing options', () => {
  const cpu = { device: 'cpu' as const };

  it('writes num_batches_tracked as I64 when asked, like PyTorch', () => {
    const sd = { 'bn.weight': tensor([1, 1], cpu), 'bn.num_batches_tracked': tensor(12, cpu) };
    const bytes = serialize(sd, { dtypes: { 'bn.num_batches_tracked': 'I64' } });
    const res = deserializeWithMetadata(bytes, cpu);
    expect(res.tensors['bn.num_batches_tracked']).to.deep.equal({ dtype: 'I64', shape: [], dataOffsets: [0, 8] });
    expect(res.tensors['bn.weight'].dtype).to.equal('F32');
    expect(res.stateDict['bn.num_batches_tracked'].item()).to.equal(12);
  });

  it('F16 and BF16: every one of the 65536 bit patterns survives read then write; NaN is written canonically', () => {
    for (const dt of ['F16', 'BF16'] as const) {
      const all = new Uint8Array(new Uint16Array(Array.from({ length: 65536 }, (_, i) => i)).buffer);
      const file = build({ x: { dtype: dt, shape: [65536], data_offsets: [0, all.length] } }, all);
      const res = deserializeWithMetadata(file, cpu);
      const again = serialize(res.stateDict, { dtypes: { x: dt } });
      const out = new Uint16Array(again.slice(8 + Number(new DataView(again.buffer).getBigUint64(0, true))).buffer);
      const nanBits = dt === 'F16' ? [0x7e00, 0xfe00] : [0x7fc0];
      for (let h = 0; h < 65536; h++) {
        const isNaN = dt === 'F16' ? (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
        if (isNaN) {
          if (!nanBits.includes(out[h])) expect.fail(`${dt} NaN 0x${h.toString(16)} was written as 0x${out[h].toString(16)}`);
        } else if (out[h] !== h) expect.fail(`${dt} 0x${h.toString(16)} was written back as 0x${out[h].toString(16)}`);
      }
    }
  });

  it('refuses values an integer dtype cannot hold, and bad dtype options', () => {
    expectThrows(
      () => serialize({ n: tensor([1, 2.5], cpu) }, { dtypes: { n: 'I64' } }),
      /cannot be written as I64: element 1 \(2\.5\) is not an integer/,
      'n',
    );
    expectThrows(() => serialize({ n: tensor([300], cpu) }, { dtypes: { n: 'U8' } }), /element 0 \(300\) is out of range/, 'n');
    expectThrows(() => serialize({ n: tensor([NaN], cpu) }, { dtypes: { n: 'I32' } }), /is not finite/, 'n');
    expectThrows(() => serialize({ n: tensor([1], cpu) }, { dtypes: { m: 'I64' } }), /not in the state dict/, 'm');
    expectThrows(() => serialize({ n: tensor([1], cpu) }, { dtypes: { n: 'Q8' as SafetensorsDtype } }), /unknown dtype "Q8"/, 'n');
  });

  it('refuses an uninitialized lazy parameter, naming it', () => {
    const lazy = new nn.LazyLinear(3);
    expectThrows(() => saveFile(lazy.stateDict(), tmp('lazy.safetensors')), /uninitialized lazy parameter/, 'weight');
    expect(fs.existsSync(tmp('lazy.safetensors'))).to.equal(false);
  });

  it('refuses non-tensors, reserved names and non-string metadata', () => {
    expectThrows(() => serialize({ a: [1, 2] as unknown as Tensor }), /expected a Tensor/, 'a');
    expectThrows(() => serialize({ __metadata__: tensor([1], cpu) }), /reserved/, '__metadata__');
    expectThrows(() => serialize({}, { metadata: { a: 1 as unknown as string } }), /must be a string/);
    expectThrows(() => serialize({}, { metadata: { 'tsnn.alias.x': 'y' } }), /reserved for tied weights/);
  });

  it('saves a tied weight once, under the first name, and records the alias', () => {
    const w = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      cpu,
    );
    const bytes = serialize({ 'lm_head.weight': w, 'embed.weight': w });
    const res = deserializeWithMetadata(bytes, { ...cpu, restoreAliases: false });
    expect(Object.keys(res.tensors)).to.deep.equal(['lm_head.weight']);
    expect(Object.keys(res.stateDict)).to.deep.equal(['lm_head.weight']);
    const header = Buffer.from(bytes).toString('utf8', 8, 8 + res.headerLength);
    expect(header).to.contain('"__metadata__":{"tsnn.alias.embed.weight":"lm_head.weight"}');
    const back = deserialize(bytes, cpu);
    expect(Object.keys(back)).to.deep.equal(['embed.weight', 'lm_head.weight']);
    expect(back['embed.weight']).to.equal(back['lm_head.weight']);
  });

  it('treats tensors over the same storage with the same view as tied, other views as separate', () => {
    const w = tensor([1, 2, 3, 4], cpu);
    const res = deserializeWithMetadata(serialize({ a: w, b: w.detach(), c: w.slice(0, 1, 3), d: w.reshape([2, 2]) }), cpu);
    expect(Object.keys(res.tensors).sort()).to.deep.equal(['a', 'c', 'd']);
    expect(res.aliases).to.deep.equal({ b: 'a' });
    expect(res.stateDict.c.toArray()).to.deep.equal([2, 3]);
    expect(res.stateDict.d.toArray()).to.deep.equal([
      [1, 2],
      [3, 4],
    ]);
  });

  it('gives a tied pair one dtype, and refuses conflicting ones', () => {
    const n = tensor(3, cpu);
    const res = deserializeWithMetadata(serialize({ a: n, b: n }, { dtypes: { b: 'I64' } }), cpu);
    expect(res.tensors.a.dtype).to.equal('I64');
    expectThrows(() => serialize({ a: n, b: n }, { dtypes: { a: 'I32', b: 'I64' } }), /tied to "a".*different dtypes/, 'b');
  });

  it("restores safetensors save_model's own alias entries ({dropped: kept})", () => {
    const bytes = build(
      {
        __metadata__: { format: 'pt', 'decoder.weight': 'encoder.weight' },
        'encoder.weight': { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      },
      new Uint8Array(new Float32Array([1, 2]).buffer),
    );
    const res = deserializeWithMetadata(bytes, cpu);
    expect(res.aliases).to.deep.equal({ 'decoder.weight': 'encoder.weight' });
    expect(res.stateDict['decoder.weight']).to.equal(res.stateDict['encoder.weight']);
    expect(res.metadata).to.deep.equal({ format: 'pt', 'decoder.weight': 'encoder.weight' });
    expect(Object.keys(deserialize(bytes, { ...cpu, restoreAliases: false }))).to.deep.equal(['encoder.weight']);
  });

  it('orders tensors like the reference: dtype (U64..BOOL) descending, then name by code point', () => {
    const t = (v: number[]) => tensor(v, cpu);
    const sd = { z: t([1]), '😀': t([1]), ｅ: t([1]), a: t([1]), i: t([1]), h: t([1]), b: t([1]), m: t([1]) };
    const res = deserializeWithMetadata(serialize(sd, { dtypes: { i: 'I64', h: 'F16', b: 'BF16', m: 'BOOL', a: 'F64' } }), cpu);
    expect(Object.keys(res.tensors)).to.deep.equal(['i', 'a', 'z', 'ｅ', '😀', 'b', 'h', 'm']);
  });

  it('reads unaligned buffers (a Buffer slice at an odd offset)', () => {
    const bytes = serialize({ x: tensor([1.5, -2, 3], cpu), y: tensor([7], cpu) }, { dtypes: { y: 'I64' } });
    const odd = new Uint8Array(bytes.length + 3).subarray(3);
    odd.set(bytes);
    const back = deserialize(odd, cpu);
    expect(Array.from(back.x.dataSync())).to.deep.equal([1.5, -2, 3]);
    expect(back.y.item()).to.equal(7);
  });

  it('readHeader validates the header and file size without reading tensors', () => {
    const file = tmp('header.safetensors');
    saveFile({ a: tensor([1, 2], cpu) }, file, { metadata: { k: 'v' } });
    expect(loadFile(file).a.toArray()).to.deep.equal([1, 2]); // default device
    const h = readHeader(file);
    expect(h.metadata).to.deep.equal({ k: 'v' });
    expect(h.tensors).to.deep.equal({ a: { dtype: 'F32', shape: [2], dataOffsets: [0, 8] } });
    fs.appendFileSync(file, Buffer.from([0]));
    expectThrows(() => readHeader(file), /1 trailing bytes/);
  });
});

// ---- names are data ------------------------------------------------------------------------------------

describe('safetensors: tensor and metadata names are data, whatever they are called', () => {
  const cpu = { device: 'cpu' as const };
  // what the reference writes for {'__proto__': [1.5, -2], 'constructor': [3]}, metadata {'__proto__': 'm'},
  // and 'toString' tied to '__proto__' (a header literal: a JS object literal would not hold a '__proto__' key)
  const header =
    '{"__metadata__":{"__proto__":"m","tsnn.alias.toString":"__proto__"},' +
    '"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"constructor":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}';
  const bytes = build(header, new Uint8Array(new Float32Array([1.5, -2, 3]).buffer));
  const entries = (o: object) => new Map(Object.entries(o));

  it("deserialize, loadFile and readHeader keep a tensor named '__proto__', its alias and a metadata key of that name", () => {
    const file = tmp('proto-names.safetensors');
    fs.writeFileSync(file, bytes);
    for (const sd of [deserialize(bytes, cpu), loadFile(file, cpu)]) {
      const m = entries(sd);
      expect([...m.keys()]).to.deep.equal(['__proto__', 'constructor', 'toString']);
      expect(m.get('__proto__')!.toArray()).to.deep.equal([1.5, -2]);
      expect(m.get('constructor')!.toArray()).to.deep.equal([3]);
      expect(m.get('toString')).to.equal(m.get('__proto__'));
    }
    const res = deserializeWithMetadata(bytes, cpu);
    expect([...entries(res.metadata!)]).to.deep.equal([['__proto__', 'm']]);
    expect([...entries(res.aliases)]).to.deep.equal([['toString', '__proto__']]);
    for (const h of [res, readHeader(file)]) {
      expect([...entries(h.tensors)]).to.deep.equal([
        ['__proto__', { dtype: 'F32', shape: [2], dataOffsets: [0, 8] }],
        ['constructor', { dtype: 'F32', shape: [1], dataOffsets: [8, 12] }],
      ]);
    }
    // and writing them back reproduces the file byte for byte
    expectSameBytes(serialize(res.stateDict, { metadata: res.metadata! }), bytes, 'rewritten');
  });

  it('tensors named after Object.prototype members are written with their own dtype, never an inherited option', () => {
    const sd = { constructor: tensor([1, 2], cpu), hasOwnProperty: tensor([3], cpu), toString: tensor([4], cpu) };
    const back = deserializeWithMetadata(serialize(sd, { dtypes: { toString: 'I64' as SafetensorsDtype } }), cpu);
    expect(Object.entries(back.tensors).map(([k, t]) => [k, t.dtype])).to.deep.equal([
      ['toString', 'I64'],
      ['constructor', 'F32'],
      ['hasOwnProperty', 'F32'],
    ]);
    expect(Object.entries(back.stateDict).map(([k, t]) => [k, t.toArray()])).to.deep.equal([
      ['constructor', [1, 2]],
      ['hasOwnProperty', [3]],
      ['toString', [4]],
    ]);
  });

  it("a checkpoint with a stray '__proto__' tensor is refused by strict loading, not silently loaded", () => {
    const net = new nn.Linear(2, 2);
    const file = tmp('stray-proto.safetensors');
    saveFile(Object.fromEntries([...Object.entries(net.stateDict()), ['__proto__', zeros([1])]]), file);
    const target = new nn.Linear(2, 2);
    expect(() => target.loadStateDict(loadFile(file))).to.throw(/nothing was changed\):\n {2}unexpected keys: '__proto__'$/);
    expect(target.loadStateDict(loadFile(file), { strict: false })).to.deep.equal({ missingKeys: [], unexpectedKeys: ['__proto__'] });
    expect(target.weight.toArray()).to.deep.equal(net.weight.toArray());
  });
});

// ---- corrupt files -------------------------------------------------------------------------------------

describe('safetensors: corrupt files are refused with a clear error', () => {
  const cpu = { device: 'cpu' as const };
  const good = () => serialize({ a: tensor([1, 2, 3], cpu), b: tensor([[4, 5]], cpu) });
  const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const load = (bytes: Uint8Array) => () => deserialize(bytes, cpu);

  it('truncated file (data cut short) names the file and the tensor that runs past the end', () => {
    const bytes = good();
    const file = tmp('truncated.safetensors');
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 3));
    const e = expectThrows(() => loadFile(file, cpu), /truncated/, 'b');
    expect(e.message).to.contain(file);
    expect(e.file).to.equal(file);
  });

  it('truncated file (inside the header, or under 8 bytes)', () => {
    const bytes = good();
    expectThrows(load(bytes.subarray(0, 20)), /header length \d+ runs past the end of the file/, null);
    expectThrows(load(bytes.subarray(0, 5)), /file is 5 bytes, too small/, null);
    expectThrows(load(new Uint8Array(0)), /file is 0 bytes/, null);
  });

  it('header length over the 100,000,000-byte cap', () => {
    expectThrows(load(build({}, 0, { n: BigInt(MAX_HEADER_SIZE + 1) })), /header length 100000001 is larger than the limit of 100000000/);
    expectThrows(load(build({}, 0, { n: 0xffffffffffffffffn })), /header length 18446744073709551615 is larger than the limit/);
  });

  it('overlapping offsets', () => {
    expectThrows(load(build({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12)), /data_offsets \[4, 12\] overlap tensor "a" at \[0, 8\]/, 'b');
    expectThrows(load(build({ a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8)), /overlap/);
  });

  it('hole in offsets (at the start and between tensors)', () => {
    expectThrows(load(build({ a: f32([2], 0, 8), b: f32([2], 12, 20) }, 20)), /\[12, 20\] leave a hole: bytes 8\.\.12/, 'b');
    expectThrows(load(build({ a: f32([2], 4, 12) }, 12)), /leave a hole: bytes 0\.\.4/, 'a');
  });

  it('byte size that does not match shape x dtype', () => {
    expectThrows(load(build({ a: f32([3], 0, 8) }, 8)), /shape \[3\] of dtype F32 needs 12 bytes, but data_offsets \[0, 8\] span 8/, 'a');
    expectThrows(load(build({ a: { dtype: 'I64', shape: [2], data_offsets: [0, 8] } }, 8)), /needs 16 bytes/, 'a');
  });

  it('end offset before begin', () => {
    expectThrows(load(build({ a: f32([0], 8, 0) }, 0)), /end before they begin/, 'a');
  });

  it('duplicate keys (top level, and inside a tensor entry)', () => {
    const dup = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
    expectThrows(load(build(dup, 8)), /duplicate key "a"/, 'a');
    const inner = '{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}';
    expectThrows(load(build(inner, 4)), /duplicate key "dtype" in a/, 'a');
    const meta = '{"__metadata__":{"k":"1","k":"2"}}';
    expectThrows(load(build(meta)), /duplicate key "k" in __metadata__/, null);
  });

  it('unknown dtype (and ones tsnn cannot convert)', () => {
    expectThrows(load(build({ a: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4)), /unknown dtype "F33"/, 'a');
    expectThrows(load(build({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8)), /dtype C64 is not supported/, 'a');
    expectThrows(load(build({ a: { dtype: 7, shape: [1], data_offsets: [0, 4] } }, 4)), /"dtype" must be a string/, 'a');
  });

  it('trailing bytes after the last tensor', () => {
    const bytes = good();
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expectThrows(load(longer), /4 trailing bytes after the last tensor/, null);
  });

  it('header that is not valid UTF-8, not JSON, or not an object', () => {
    const bad = build('{"a":1}');
    bad[10] = 0xff;
    expectThrows(load(bad), /header is not valid UTF-8/);
    expectThrows(load(build('{"a":')), /header is not valid JSON/);
    expectThrows(load(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],}}', 4)), /not valid JSON/);
    expectThrows(load(build('[1,2]')), /must start with '\{'/);
    expectThrows(load(build(' {}')), /must start with '\{'/);
    expectThrows(load(build('{} x')), /trailing characters/);
    expectThrows(load(build('{"a":"\\ud800"}')), /lone leading surrogate/);
  });

  it('malformed tensor entries and metadata', () => {
    expectThrows(load(build({ a: { dtype: 'F32', shape: [1] } }, 4)), /no "data_offsets"/, 'a');
    expectThrows(
      load(build({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4)),
      /shape\[0\] must be a non-negative integer, got -1/,
      'a',
    );
    expectThrows(
      load(build({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4)),
      /shape\[0\] must be a non-negative integer, got 1\.5/,
      'a',
    );
    expectThrows(load(build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }, 4)), /two non-negative integers/, 'a');
    expectThrows(
      load(build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', 4)),
      /data_offsets\[1\] must be a non-negative integer, got 4\.0/,
      'a',
    );
    expectThrows(load(build({ a: 5 })), /header entry must be an object/, 'a');
    expectThrows(load(build({ __metadata__: { k: 1 } })), /__metadata__\["k"\] must be a string/);
    expectThrows(load(build({ __metadata__: { 'tsnn.alias.x': 'nope' } })), /alias of "nope", which is not in the file/, 'x');
  });

  it('a file name is in every error from loadFile, and a missing file is a clear error', () => {
    const file = tmp('overlap.safetensors');
    fs.writeFileSync(file, build({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12));
    const e = expectThrows(() => loadFile(file, cpu), /overlap/, 'b');
    expect(e.message.startsWith(`safetensors: ${file}: tensor "b": `)).to.equal(true);
    expectThrows(() => loadFile(tmp('missing.safetensors')), /could not read the file/);
  });

  it('accepts what the reference accepts: zero-size tensors at a shared offset, null __metadata__, extra fields', () => {
    const bytes = build(
      {
        __metadata__: null,
        e1: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
        a: { dtype: 'U8', shape: [2], data_offsets: [0, 2], extra: 'ignored' },
        e2: { dtype: 'I64', shape: [3, 0], data_offsets: [2, 2] },
      },
      Uint8Array.from([3, 250]),
    );
    const res = deserializeWithMetadata(bytes, cpu);
    expect(res.metadata).to.equal(null);
    expect(Array.from(res.stateDict.a.dataSync())).to.deep.equal([3, 250]);
    expect(res.stateDict.e2.shape).to.deep.equal([3, 0]);
  });
});
