/**
 * The cache of generated webasm kernel modules (src/backend/wasm-artefacts.ts) and its disk store
 * (src/platform/kernel-store.ts): a hit computes the same bits as a fresh generation; what is read back from
 * disk is refused when it is truncated, corrupt, planted with another interface, or a symlink; a directory
 * another user could write into is refused; and a second process really skips analysis and codegen.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Backend } from '../../src/backend/gpujs-backend';
import { artefactStats, clearArtefactMemory, decode } from '../../src/backend/wasm-artefacts';
import { codegenGpu, wasmCodegenStats } from '../../src/backend/wasm-codegen';
import { flatWasmOutput } from '../../src/backend/kernel-output';
import { kernelStore, kernelStoreDir, kernelStoreRefusal, kernelStoreStats, resetKernelStores } from '../../src/platform/kernel-store';
import * as storeBrowser from '../../src/platform/kernel-store.browser';
import * as storeNode from '../../src/platform/kernel-store';
import { setBackendOptions } from '../../src/platform/options';
import { withEnv } from '../helpers';

const SOURCES = [
  // a matmul-like loop on a 2-D grid (vector loads, integer counters, proven bounds)
  {
    source:
      'function(in0, in1) { let s = 0; for (let k = 0; k < 48; k++) { s += in0[this.thread.y * 48 + k] * in1[k * 36 + this.thread.x]; } return s; }',
    grid: [36, 10],
    outSize: 360,
    inputs: [480, 48 * 36],
    scalars: [] as number[],
  },
  // Math imports and a scalar argument
  {
    source: 'function(in0, s0) { return Math.exp(in0[this.thread.x] * s0) + Math.sqrt(Math.abs(in0[this.thread.x])); }',
    outSize: 1001,
    inputs: [1001],
    scalars: [0.37],
  },
];

function inputsOf(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

/** Runs every test kernel on a new webasm Backend; returns the outputs' bits. */
function runKernels(): Uint32Array[] {
  const b = new Backend('webasm');
  try {
    return SOURCES.map((k, i) => {
      const inputs = k.inputs.map((n, j) => b.upload(inputsOf(n, 7 + i * 10 + j)));
      const out = b.read(b.run({ source: k.source, outSize: k.outSize, grid: k.grid, inputs, scalars: k.scalars }));
      return new Uint32Array(Float32Array.from(out).buffer);
    });
  } finally {
    b.destroy();
  }
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-kstore-'));
}

const snapshot = () => ({ ...artefactStats });
const delta = (a: typeof artefactStats) =>
  Object.fromEntries(Object.entries(artefactStats).map(([k, v]) => [k, v - (a as any)[k]])) as typeof artefactStats;

describe('webasm kernel artefacts: in memory and on disk', function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => {
    dir = tmpDir();
    resetKernelStores();
    clearArtefactMemory();
    setBackendOptions({ kernelCacheDir: dir });
  });
  afterEach(() => {
    setBackendOptions({ kernelCacheDir: undefined, wasmCodegen: undefined });
    resetKernelStores();
    clearArtefactMemory();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a memory hit and a disk hit compute bit-identical results to a fresh generation, and to no cache at all', () => {
    setBackendOptions({ kernelCacheDir: false });
    clearArtefactMemory();
    const uncached = runKernels();
    setBackendOptions({ kernelCacheDir: dir });
    clearArtefactMemory();
    let s = snapshot();
    const codegen0 = { ...wasmCodegenStats };
    const cold = runKernels();
    const coldCodegen = Object.fromEntries(Object.entries(wasmCodegenStats).map(([k, v]) => [k, v - (codegen0 as any)[k]]));
    expect(delta(s)).to.include({ generated: SOURCES.length, memoryHits: 0, diskHits: 0 });
    expect(coldCodegen.vectorLoads).to.be.greaterThan(0);
    s = snapshot();
    const memory = runKernels();
    expect(delta(s)).to.include({ generated: 0, memoryHits: SOURCES.length, diskHits: 0 });
    clearArtefactMemory();
    s = snapshot();
    const codegen1 = { ...wasmCodegenStats };
    const disk = runKernels();
    expect(delta(s)).to.include({ generated: 0, memoryHits: 0, diskHits: SOURCES.length, diskRejected: 0 });
    // the statistics of the generation are replayed on a hit: counts do not depend on the cache
    expect(Object.fromEntries(Object.entries(wasmCodegenStats).map(([k, v]) => [k, v - (codegen1 as any)[k]]))).to.deep.equal(coldCodegen);
    for (const r of [cold, memory, disk]) expect(r.map((a) => Array.from(a))).to.deep.equal(uncached.map((a) => Array.from(a)));
  });

  it('codegen settings are part of the key: switching the extensions off generates anew, and computes the same', () => {
    const on = runKernels();
    setBackendOptions({ wasmCodegen: false });
    const s = snapshot();
    const off = runKernels();
    expect(delta(s).generated).to.equal(SOURCES.length);
    expect(off.map((a) => Array.from(a))).to.deep.equal(on.map((a) => Array.from(a)));
  });

  it('entries are 0600 files in a 0700 directory, written without leftovers', () => {
    runKernels();
    expect(fs.statSync(dir).mode & 0o777).to.equal(0o700);
    const files = fs.readdirSync(dir);
    expect(files.length).to.equal(SOURCES.length);
    for (const f of files) {
      expect(f).to.match(/^[0-9a-f]{64}\.bin$/);
      expect(fs.statSync(path.join(dir, f)).mode & 0o777).to.equal(0o600);
    }
  });

  /** Populates the store, damages every entry with `damage`, then checks the next fresh run refuses and rewrites them. */
  function refusedAndRewritten(damage: (file: string) => void): void {
    const good = runKernels();
    const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
    for (const f of files) damage(f);
    clearArtefactMemory();
    let s = snapshot();
    const again = runKernels();
    expect(delta(s)).to.include({ generated: SOURCES.length, diskHits: 0 });
    expect(again.map((a) => Array.from(a))).to.deep.equal(good.map((a) => Array.from(a)));
    // the regenerated artefacts replaced the bad entries
    clearArtefactMemory();
    s = snapshot();
    runKernels();
    expect(delta(s)).to.include({ generated: 0, diskHits: SOURCES.length });
  }

  it('a truncated entry is a miss, and is rewritten', () => {
    const rejected0 = kernelStoreStats.rejected;
    refusedAndRewritten((f) => fs.truncateSync(f, fs.statSync(f).size - 7));
    expect(kernelStoreStats.rejected - rejected0).to.equal(SOURCES.length);
  });

  it('an entry with a flipped byte fails its digest, and is rewritten', () => {
    const rejected0 = kernelStoreStats.rejected;
    refusedAndRewritten((f) => {
      const b = fs.readFileSync(f);
      b[b.length - 3] ^= 0x40;
      fs.writeFileSync(f, b);
    });
    expect(kernelStoreStats.rejected - rejected0).to.equal(SOURCES.length);
  });

  it('a planted entry with a valid digest but a module that imports anything else is refused, never run', () => {
    // what a planter who could write the directory would store: the digest is no secret, so the content is checked too
    const evil = new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      // type section: () -> ()
      0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
      // import section: env.evil (func type 0)
      0x02, 0x0c, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x04, 0x65, 0x76, 0x69, 0x6c, 0x00, 0x00,
    ]);
    const meta = { returnType: 'Number', componentCount: 1, usesRandom: false, mathImports: [], initial: 1, maximum: 1, stats: {} };
    const json = new TextEncoder().encode(JSON.stringify(meta));
    const payload = new Uint8Array(4 + json.length + evil.length);
    new DataView(payload.buffer).setUint32(0, json.length, true);
    payload.set(json, 4);
    payload.set(evil, 4 + json.length);
    expect(decode(payload, true)).to.equal(null);
    // and Math import names that are not Math's own functions, or metadata that is not a kernel's
    const withMeta = (m: object) => {
      const j = new TextEncoder().encode(JSON.stringify(m));
      const p = new Uint8Array(4 + j.length);
      new DataView(p.buffer).setUint32(0, j.length, true);
      p.set(j, 4);
      return p;
    };
    expect(decode(withMeta({ ...meta, mathImports: ['constructor'] }), true)).to.equal(null);
    expect(decode(withMeta({ ...meta, componentCount: 4 }), true)).to.equal(null);
    // planted through the store itself (valid digest): refused when read back, regenerated, rewritten
    const rejected0 = artefactStats.diskRejected;
    refusedAndRewritten((f) => {
      const name = path.basename(f, '.bin');
      const digest = createHash('sha256').update(name).update(payload).digest();
      fs.writeFileSync(f, Buffer.concat([Buffer.from('TSNNKC1\n', 'latin1'), digest, payload]));
    });
    expect(artefactStats.diskRejected - rejected0).to.equal(SOURCES.length);
  });

  it('an entry that is a symlink is not followed', () => {
    const target = path.join(tmpDir(), 'elsewhere.bin');
    const rejected0 = kernelStoreStats.rejected;
    const misses0 = kernelStoreStats.misses;
    refusedAndRewritten((f) => {
      fs.copyFileSync(f, target);
      fs.unlinkSync(f);
      fs.symlinkSync(target, f);
    });
    // O_NOFOLLOW: opening it fails (a miss), and the rename of the fresh entry replaces the link itself
    expect(kernelStoreStats.misses - misses0 + (kernelStoreStats.rejected - rejected0)).to.be.at.least(SOURCES.length);
    for (const f of fs.readdirSync(dir)) expect(fs.lstatSync(path.join(dir, f)).isSymbolicLink()).to.equal(false);
    fs.rmSync(path.dirname(target), { recursive: true, force: true });
  });

  it('refuses a group- or world-writable directory, a symlinked one and one of another user: nothing is read or written there', () => {
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (m: string) => warnings.push(m);
    try {
      fs.chmodSync(dir, 0o777);
      resetKernelStores();
      expect(kernelStore()).to.equal(null);
      expect(kernelStoreRefusal.why).to.match(/writable by group or others \(mode 777\)/);
      const s = snapshot();
      runKernels();
      expect(delta(s).generated).to.equal(SOURCES.length);
      expect(fs.readdirSync(dir)).to.deep.equal([]);
      fs.chmodSync(dir, 0o720);
      resetKernelStores();
      expect(kernelStore()).to.equal(null);
      fs.chmodSync(dir, 0o700);
      resetKernelStores();
      expect(kernelStore()).to.not.equal(null);

      const link = `${dir}-link`;
      fs.symlinkSync(dir, link);
      setBackendOptions({ kernelCacheDir: link });
      resetKernelStores();
      expect(kernelStore()).to.equal(null);
      expect(kernelStoreRefusal.why).to.match(/symbolic link/);
      fs.unlinkSync(link);

      if (process.getuid!() === 0) {
        // as root the owner can be changed: a directory someone else owns is refused even though root could write it
        setBackendOptions({ kernelCacheDir: dir });
        fs.chownSync(dir, 65534, 65534);
        resetKernelStores();
        expect(kernelStore()).to.equal(null);
        expect(kernelStoreRefusal.why).to.match(/owned by uid 65534/);
        fs.chownSync(dir, 0, 0);
      }
      expect(warnings.some((w) => /not caching compiled kernels/.test(w))).to.equal(true);
    } finally {
      console.warn = warn;
    }
  });

  it('where: the option, then TSNN_KERNEL_CACHE_DIR, then $XDG_CACHE_HOME/tsnn/kernels (absolute only), else ~/.cache/tsnn/kernels', () => {
    setBackendOptions({ kernelCacheDir: undefined });
    withEnv({ TSNN_KERNEL_CACHE_DIR: '', XDG_CACHE_HOME: '/some/where' }, () => expect(kernelStoreDir()).to.equal('/some/where/tsnn/kernels'));
    withEnv({ TSNN_KERNEL_CACHE_DIR: '', XDG_CACHE_HOME: 'relative/dir' }, () =>
      expect(kernelStoreDir()).to.equal(path.join(os.homedir(), '.cache/tsnn/kernels')),
    );
    withEnv({ TSNN_KERNEL_CACHE_DIR: 'off' }, () => expect(kernelStoreDir()).to.equal(null));
    withEnv({ TSNN_KERNEL_CACHE_DIR: '/x/y' }, () => {
      expect(kernelStoreDir()).to.equal('/x/y');
      setBackendOptions({ kernelCacheDir: false });
      expect(kernelStoreDir()).to.equal(null);
    });
    expect(() => setBackendOptions({ kernelCacheDir: true as any })).to.throw(TypeError, /kernelCacheDir' must be a directory path or false/);
    // the default directory is created 0700 (under a fresh XDG_CACHE_HOME)
    setBackendOptions({ kernelCacheDir: undefined });
    const xdg = tmpDir();
    withEnv({ TSNN_KERNEL_CACHE_DIR: '', XDG_CACHE_HOME: xdg }, () => {
      resetKernelStores();
      expect(kernelStore()?.dir).to.equal(path.join(xdg, 'tsnn/kernels'));
      expect(fs.statSync(path.join(xdg, 'tsnn')).mode & 0o777).to.equal(0o700);
      expect(fs.statSync(path.join(xdg, 'tsnn/kernels')).mode & 0o777).to.equal(0o700);
    });
    fs.rmSync(xdg, { recursive: true, force: true });
  });

  it("tsnn's webasm kernel class gets the flat result layout (it used to miss the class-name check)", () => {
    const gpu = codegenGpu(require('gpu.js'), 'webasm');
    const k = gpu.createKernel('function(a) { return a[this.thread.y * 5 + this.thread.x] * 2; }', { output: [5, 3] });
    flatWasmOutput(k);
    const out = k(Float32Array.from({ length: 15 }, (_, i) => i));
    expect(k.kernel.constructor.name).to.equal('TsnnWebAssemblyKernel');
    expect(out).to.be.instanceOf(Float32Array);
    expect(Array.from(out as Float32Array)).to.deep.equal(Array.from({ length: 15 }, (_, i) => 2 * i));
    gpu.destroy();
  });

  it('the browser adapter has no store, with the same exports', () => {
    expect(Object.keys(storeBrowser).sort()).to.deep.equal(Object.keys(storeNode).sort());
    expect(storeBrowser.kernelStore()).to.equal(null);
    expect(storeBrowser.kernelStoreDir()).to.equal(null);
  });

  it('a second fresh process takes every kernel of a training step from disk: no analysis, no codegen, the same loss bits', function () {
    const script = `
      const tsnn = require(${JSON.stringify(path.resolve(__dirname, '../../src'))});
      const { artefactStats } = require(${JSON.stringify(path.resolve(__dirname, '../../src/backend/wasm-artefacts'))});
      tsnn.manualSeed(0);
      const net = new tsnn.nn.Sequential(new tsnn.nn.Linear(20, 16), new tsnn.nn.ReLU(), new tsnn.nn.Linear(16, 3));
      const x = tsnn.rand([8, 20]);
      const y = tsnn.tensor([0, 1, 2, 0, 1, 2, 0, 1]);
      const opt = new tsnn.optim.SGD(net.parameters(), { lr: 0.1 });
      const losses = [];
      for (let i = 0; i < 2; i++) {
        opt.zeroGrad();
        const l = tsnn.F.crossEntropy(net(x), y);
        l.backward();
        opt.step();
        losses.push(Array.from(new Uint32Array(Float32Array.of(l.item()).buffer))[0]);
      }
      console.log(JSON.stringify({ losses, ...artefactStats }));`;
    const run = () => {
      const r = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, TSNN_DEVICE: 'webasm', TSNN_THREADS: '1', TSNN_KERNEL_CACHE_DIR: dir },
      });
      expect(r.status, r.stderr).to.equal(0);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    };
    const first = run();
    const second = run();
    expect(first.generated).to.be.greaterThan(5);
    expect(first.diskHits).to.equal(0);
    expect(second.generated).to.equal(0);
    expect(second.diskHits).to.equal(first.generated);
    expect(second.losses).to.deep.equal(first.losses);
  });
});
