/**
 * The webasm codegen extensions (src/backend/wasm-codegen.ts): every kernel here is compiled twice,
 * once by a plain gpu.js GPU and once by tsnn's (codegenGpu: contiguous vector loads + integer loop
 * counters), and the two results must agree bit for bit — including reads whose 4 lanes run off either end of the array
 * (the vector load must fall back to gpu.js's clamped gather there).
 */
import { expect } from 'chai';
import { codegenGpu, wasmCodegen, wasmCodegenStats } from '../../src/backend/wasm-codegen';
import { deviceReport, setBackendOptions, tensor } from '../../src';

const gpujs = require('gpu.js');

function compileAndRun(
  source: string,
  output: number[],
  args: Float32Array[],
  extensions: boolean,
  returnType?: string,
  settings: object = {},
): Float32Array {
  const saved = { ...wasmCodegen };
  wasmCodegen.vectorLoads = extensions;
  wasmCodegen.integerCounters = extensions;
  wasmCodegen.threadLocals = extensions;
  wasmCodegen.provenBounds = extensions;

  // the reference is a GPU a user would make: gpu.js's own code, whatever tsnn compiled before in this process
  const gpu = extensions ? codegenGpu(gpujs, 'webasm') : new gpujs.GPU({ mode: 'webasm' });
  try {
    const kernel = gpu.createKernel(source, { output, ...(returnType ? { returnType } : {}), loopMaxIterations: 100000, ...settings });
    const out = kernel(...args);
    const flat = flattenAll(out);
    return flat;
  } finally {
    Object.assign(wasmCodegen, saved);
    gpu.destroy();
  }
}

function flattenAll(x: any): Float32Array {
  const values: number[] = [];
  const walk = (v: any) => {
    if (typeof v === 'number') values.push(v);
    else for (const e of v) walk(e);
  };
  walk(x);
  return Float32Array.from(values);
}

function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

/** Same bits with and without the extensions; returns the result for value checks. */
function sameBits(source: string, output: number[], args: Float32Array[], returnType?: string, settings?: object): Float32Array {
  const plain = compileAndRun(source, output, args, false, returnType, settings);
  const before = { ...wasmCodegenStats };
  const extended = compileAndRun(source, output, args, true, returnType, settings);
  expect(extended.length).to.equal(plain.length);
  expect(Buffer.from(extended.buffer).equals(Buffer.from(plain.buffer)), 'bit-identical to gpu.js').to.equal(true);
  (sameBits as any).last = {
    vectorLoads: wasmCodegenStats.vectorLoads - before.vectorLoads,
    integerCounters: wasmCodegenStats.integerCounters - before.integerCounters,
    provenLoads: wasmCodegenStats.provenLoads - before.provenLoads,
  };
  return extended;
}
const lastStats = () => (sameBits as any).last as { vectorLoads: number; integerCounters: number; provenLoads: number };

describe('webasm codegen: contiguous vector loads and integer loop counters', function () {
  before(function () {
    // TSNN_WASM_CODEGEN=off: gpu.js's own code only (the rest of the suite runs unchanged on it)
    if (!deviceReport().find((d) => d.device === 'webasm')?.ok || process.env.TSNN_WASM_CODEGEN === 'off') this.skip();
  });

  it('reads a[u + this.thread.x] with one vector load, same bits as the gather', () => {
    const a = randomArray(64, 1);
    const out = sameBits('function(a) { return a[this.thread.y * 16 + this.thread.x] * 2; }', [16, 4], [a]);
    expect(lastStats().vectorLoads).to.be.greaterThan(0);
    expect(out[17]).to.equal(Math.fround(a[17] * 2));
  });

  it('falls back to the clamped gather where the 4 lanes run past either end', () => {
    const a = randomArray(10, 2);
    // base - 3 .. base + 8 over a 10-element array: negative and past-the-end lanes are clamped by gpu.js
    sameBits('function(a) { return a[this.thread.x - 3] + a[this.thread.x + 5]; }', [12], [a]);
    expect(lastStats().vectorLoads).to.equal(2);
    expect(lastStats().provenLoads).to.equal(0); // neither is in range for every thread: both keep the check
  });

  it('handles widths that are not a multiple of 4 (scalar tail) and offsets into the array', () => {
    const a = randomArray(7 * 9 + 5, 3);
    sameBits('function(a) { return a[5 + this.thread.y * 9 + this.thread.x]; }', [9, 7], [a]);
    expect(lastStats().provenLoads).to.equal(1); // max index 5 + 6*9 + 8 = 67 = last
    // one element shorter: the last thread reads past the end, so the read keeps its check (and clamps)
    sameBits('function(a) { return a[5 + this.thread.y * 9 + this.thread.x]; }', [9, 7], [a.subarray(0, 7 * 9 + 4)]);
    expect(lastStats().provenLoads).to.equal(0);
  });

  it("proves reads offset by an Integer constant (a thread part's base) from the constant's value", () => {
    const a = randomArray(64, 7);
    const src = 'function(a) { return a[(this.thread.y + this.constants.partBase) * 8 + this.thread.x]; }';
    const part = (base: number) => ({ constants: { partBase: base }, constantTypes: { partBase: 'Integer' } });
    // rows 4..7 of an 8x8 array: max index 7 * 8 + 7 = 63 = last
    const out = sameBits(src, [8, 4], [a], undefined, part(4));
    expect(lastStats().provenLoads).to.equal(1);
    expect(out[0]).to.equal(a[32]);
    // rows 5..8: the last row runs past the end, so the read keeps its check (and clamps)
    sameBits(src, [8, 4], [a], undefined, part(5));
    expect(lastStats().vectorLoads).to.equal(1);
    expect(lastStats().provenLoads).to.equal(0);
  });

  it('a counter range proves nothing for another variable of the same name', () => {
    const a = randomArray(40, 9);
    // the first i runs 0..3 (its reads are provably in range); the second i is assigned in its body, so it
    // is no counter and its (i | 0) * 4 + x reads run past the end: they must keep the check (and clamp)
    const src = `function(a) {
      let s = 0.0;
      for (let i = 0; i < 4; i++) { s += a[(i | 0) * 4 + this.thread.x]; }
      for (let i = 0; i < 12; i++) { s += a[(i | 0) * 4 + this.thread.x]; if (i == 5) { i = 7; } }
      return s;
    }`;
    sameBits(src, [8], [a]);
    expect(lastStats().provenLoads).to.equal(1);
    expect(lastStats().vectorLoads).to.equal(2);
  });

  it('leaves float-typed uniform parts and other index shapes to gpu.js', () => {
    const a = randomArray(40, 4);
    sameBits('function(a) { let f = 1.5; return a[f + this.thread.x] + a[this.thread.x * 2] + a[(this.thread.x + 1) * 1]; }', [16], [a]);
    expect(lastStats().vectorLoads).to.equal(0);
  });

  it('the tiled matmul source: vector loads of B, integer k, the bits of gpu.js', () => {
    const [M, K, N] = [8, 12, 8];
    const a = randomArray(M * K, 5);
    const b = randomArray(K * N, 6);
    const src = `function(b, a) {
      let c0 = 0.0; let c1 = 0.0; let c2 = 0.0; let c3 = 0.0; let bv = 0.0;
      for (let r = 0; r < ${K}; r += 2) {
        bv = b[(r | 0) * ${N} + this.thread.x];
        c0 += a[(this.thread.y * 4) * ${K} + (r | 0)] * bv; c1 += a[(this.thread.y * 4 + 1) * ${K} + (r | 0)] * bv;
        c2 += a[(this.thread.y * 4 + 2) * ${K} + (r | 0)] * bv; c3 += a[(this.thread.y * 4 + 3) * ${K} + (r | 0)] * bv;
        bv = b[((r | 0) + 1) * ${N} + this.thread.x];
        c0 += a[(this.thread.y * 4) * ${K} + (r | 0) + 1] * bv; c1 += a[(this.thread.y * 4 + 1) * ${K} + (r | 0) + 1] * bv;
        c2 += a[(this.thread.y * 4 + 2) * ${K} + (r | 0) + 1] * bv; c3 += a[(this.thread.y * 4 + 3) * ${K} + (r | 0) + 1] * bv;
      }
      return [c0, c1, c2, c3];
    }`;
    const out = sameBits(src, [N, M / 4], [b, a], 'Array(4)');
    expect(lastStats().vectorLoads).to.equal(2); // the two reads of B in the SIMD function
    expect(lastStats().integerCounters).to.be.greaterThan(0);
    // both reads of B are proven in range (k < K, x < N): no bounds check, no fallback gather
    expect(lastStats().provenLoads).to.equal(2);
    // a value check against a float64 dot product (layout: thread (x, y) holds rows 4y..4y+3 of column x)
    let ref = 0;
    for (let k = 0; k < K; k++) ref += a[5 * K + k] * b[k * N + 3];
    expect(out[(1 * N + 3) * 4 + 1]).to.be.closeTo(ref, 1e-5);
  });

  it('integer counters keep float uses of the counter exact: r * 0.5, r / 3, r % 4, descending and odd steps', () => {
    const a = randomArray(8, 7);
    const src = `function(a) {
      let s = 0.0;
      for (let r = 0; r < 37; r += 3) { s += r * 0.5 + r / 3 + r % 4 + Math.sqrt(r); }
      for (let q = 20; q > -7; q -= 2) { s += q * a[this.thread.x]; }
      for (let i = 0; i < 5; i++) { s += i; }
      return s;
    }`;
    sameBits(src, [8], [a]);
    expect(lastStats().integerCounters).to.be.greaterThan(0);
  });

  it('does not type a counter as integer when the body assigns it or the start is fractional', () => {
    const a = randomArray(8, 8);
    const src = `function(a) {
      let s = 0.0;
      for (let r = 0; r < 10; r++) { s += r; if (s > 100) { r = 20; } }
      for (let h = 0.5; h < 4; h += 1) { s += h * a[this.thread.x]; }
      for (let j = 0; j < 4; j += 0.5) { s += j; }
      return s;
    }`;
    sameBits(src, [8], [a]);
    expect(lastStats().integerCounters).to.equal(0);
  });

  it("a user's own gpu.js kernels in the same process are untouched: gpu.js's code, its classes unmodified", () => {
    // tsnn compiles its webasm kernels first (the tiled matmul reads rows of B with vector loads) ...
    const before = { ...wasmCodegenStats };
    const [av, bv] = [randomArray(16 * 16, 11), randomArray(16 * 16, 12)];
    // (matmul on the gpu.js kernel: on webasm it otherwise runs the direct WebAssembly gemm, not gpu.js)
    setBackendOptions({ wasmMatmul: false });
    let c;
    try {
      c = tensor(av, { device: 'webasm', shape: [16, 16] }).matmul(tensor(bv, { device: 'webasm', shape: [16, 16] }));
    } finally {
      setBackendOptions({ wasmMatmul: undefined });
    }
    let ref = 0;
    for (let k = 0; k < 16; k++) ref += av[3 * 16 + k] * bv[k * 16 + 7];
    expect(c.dataSync()[3 * 16 + 7]).to.be.closeTo(ref, 1e-5);
    expect(wasmCodegenStats.vectorLoads - before.vectorLoads, 'tsnn kernels still get vector loads').to.be.greaterThan(0);
    // ... then a user's kernel with the same contiguous read compiles without any of it
    const a = randomArray(64, 10);
    const mid = { ...wasmCodegenStats };
    const gpu = new gpujs.GPU({ mode: 'webasm' });
    try {
      const out = flattenAll(gpu.createKernel('function(a) { return a[3 + this.thread.x] * 2.0; }', { output: [60] })(a));
      for (let i = 0; i < 60; i++) expect(out[i]).to.equal(Math.fround(a[3 + i] * 2));
      expect(gpu.Kernel).to.equal(gpujs.WebAssemblyKernel);
    } finally {
      gpu.destroy();
    }
    expect(wasmCodegenStats).to.deep.equal(mid, 'no extension ran for the plain kernel');
    // gpu.js's shared classes carry no override of ours: their methods are the ones defined in gpu.js's source
    const proto = gpujs.WebAssemblyFunctionNode.prototype;
    for (const method of ['vGather', 'emitVectorFunction', 'stmtFor', 'vstmtFor']) expect(proto[method].toString()).to.not.match(/tsnn|wasmCodegen/);
    expect(Object.getOwnPropertySymbols(proto)).to.deep.equal([]);
    expect(Object.prototype.hasOwnProperty.call(gpujs.WebAssemblyKernel.prototype, 'translateSource')).to.equal(true);
    expect(gpujs.WebAssemblyKernel.prototype.translateSource.toString()).to.not.match(/Tsnn/);
  });
});
