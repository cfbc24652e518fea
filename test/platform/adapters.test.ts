/**
 * The platform layer in Node (src/platform): setBackendOptions over environment variables, the byte forms
 * of saveFile/loadFile (serialize/deserialize/loadUrl), and the browser adapters' contracts where Node can
 * check them (the same exports as the Node adapters; what they answer without a page). The browser side
 * itself runs in test/browser/browser.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  backendFor,
  deserialize,
  getBackendOptions,
  getDefaultDevice,
  loadFile,
  loadUrl,
  manualSeed,
  nn,
  noGrad,
  saveFile,
  serialize,
  setBackendOptions,
  SafetensorsError,
} from '../../src';
import { option } from '../../src/platform/options';
import { threadCount } from '../../src/backend/kernel-threads';
import { wasmCodegenStats } from '../../src/backend/wasm-codegen';
import { Backend } from '../../src/backend/gpujs-backend';
import * as envNode from '../../src/platform/env';
import * as envBrowser from '../../src/platform/env.browser';
import * as filesNode from '../../src/platform/files';
import * as filesBrowser from '../../src/platform/files.browser';
import * as glNode from '../../src/platform/gl';
import * as glBrowser from '../../src/platform/gl.browser';
import * as threadsNode from '../../src/platform/threads';
import * as threadsBrowser from '../../src/platform/threads.browser';
import { testDevices, withEnv } from '../helpers';

describe('platform: setBackendOptions', () => {
  afterEach(() => setBackendOptions({ conv: undefined, threads: undefined, kernelCache: undefined, wasmCodegen: undefined, device: undefined }));

  it('an option set wins over its environment variable; undefined goes back to the variable', () => {
    withEnv({ TSNN_CONV: 'direct', TSNN_THREADS: '3' }, () => {
      expect(option('conv')).to.equal('direct');
      expect(threadCount()).to.equal(3);
      setBackendOptions({ conv: 'im2col', threads: 1 });
      expect(option('conv')).to.equal('im2col');
      expect(threadCount()).to.equal(1);
      expect(getBackendOptions()).to.include({ conv: 'im2col', threads: 1 });
      setBackendOptions({ conv: undefined, threads: undefined });
      expect(option('conv')).to.equal('direct');
      expect(threadCount()).to.equal(3);
    });
  });

  it('a bad name or value throws, naming it, and changes nothing', () => {
    setBackendOptions({ threads: 2 });
    expect(() => setBackendOptions({ threads: 1, conv: 'fast' as any })).to.throw(
      TypeError,
      /option 'conv' must be 'direct', 'im2col' or 'implicit', got "fast"/,
    );
    expect(() => setBackendOptions({ threads: 0 })).to.throw(TypeError, /option 'threads' must be a positive integer, got 0/);
    expect(() => setBackendOptions({ thread: 1 } as any)).to.throw(TypeError, /unknown option 'thread'/);
    expect(() => setBackendOptions({ device: 'tpu' as any })).to.throw(TypeError, /option 'device' must be one of 'cpu'/);
    expect(option('threads')).to.equal(2);
    expect(option('conv')).to.equal(undefined);
  });

  it('kernelCache resizes the caches of devices already in use', () => {
    const b = backendFor('cpu');
    setBackendOptions({ kernelCache: 7 });
    expect(b.kernels.limit).to.equal(7);
    setBackendOptions({ kernelCache: undefined });
    expect(b.kernels.limit).to.equal(1024);
  });

  it('device decides what the default device resolves to', () => {
    setBackendOptions({ device: 'cpu' });
    expect(getDefaultDevice()).to.equal('cpu');
    setBackendOptions({ device: undefined });
    expect(getDefaultDevice()).to.equal(withEnv({}, () => getDefaultDevice()));
  });

  it('wasmCodegen: false compiles kernels with gpu.js code only, from then on', function () {
    if (!testDevices().includes('webasm')) this.skip();
    // tsnn's own webasm backend (the one its kernels run on), a fresh one per compile
    const a = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const compileAndRun = () => {
      const b = new Backend('webasm');
      try {
        const before = wasmCodegenStats.vectorLoads;
        const source = 'function(in0) { return in0[this.thread.y * 16 + this.thread.x] * 2; }';
        const out = b.read(b.run({ source, outSize: 64, grid: [16, 4], inputs: [b.upload(a)], scalars: [] }));
        return { loads: wasmCodegenStats.vectorLoads - before, v17: out[17] };
      } finally {
        b.destroy();
      }
    };
    const on = compileAndRun();
    setBackendOptions({ wasmCodegen: false });
    const off = compileAndRun();
    expect(on.loads, 'vector loads with the extensions').to.be.greaterThan(0);
    expect(off.loads, 'vector loads with wasmCodegen: false').to.equal(0);
    expect(off.v17).to.equal(on.v17);
    expect(off.v17).to.equal(Math.fround(a[17] * 2));
  });
});

describe('platform: state dicts as bytes', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-platform-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function model() {
    manualSeed(7);
    return new nn.Sequential(new nn.Linear(5, 4), new nn.ReLU(), new nn.Linear(4, 2));
  }

  it('serialize gives the bytes saveFile writes; deserialize and loadFile give the same tensors', () => {
    const sd = model().stateDict();
    const file = path.join(dir, 'm.safetensors');
    saveFile(sd, file);
    const bytes = serialize(sd);
    expect(Buffer.from(bytes).equals(fs.readFileSync(file))).to.equal(true);
    const back = deserialize(bytes);
    const fromFile = loadFile(file);
    expect(Object.keys(back)).to.deep.equal(Object.keys(sd).sort());
    for (const k of Object.keys(sd)) {
      expect(Array.from(back[k].dataSync())).to.deep.equal(Array.from(sd[k].dataSync()));
      expect(Array.from(fromFile[k].dataSync())).to.deep.equal(Array.from(sd[k].dataSync()));
      expect(back[k].shape).to.deep.equal(sd[k].shape);
    }
  });

  it('loadUrl fetches and validates like loadFile; a failed fetch names the URL', async () => {
    const sd = model().stateDict();
    const bytes = serialize(sd);
    const url = `data:application/octet-stream;base64,${Buffer.from(bytes).toString('base64')}`;
    const got = await loadUrl(url);
    const m = model();
    noGrad(() => m.loadStateDict(got));
    expect(Buffer.from(serialize(m.stateDict())).equals(Buffer.from(bytes))).to.equal(true);
    const broken = `data:application/octet-stream;base64,${Buffer.from(bytes.subarray(0, 20)).toString('base64')}`;
    let err: unknown = null;
    await loadUrl(broken).catch((e) => (err = e));
    expect(err).to.be.instanceOf(SafetensorsError);
    err = null;
    await loadUrl('http://127.0.0.1:9/none.safetensors').catch((e) => (err = e));
    expect(err).to.be.instanceOf(SafetensorsError);
    expect((err as Error).message).to.match(/127\.0\.0\.1:9\/none\.safetensors.*could not fetch/);
  });
});

describe('platform: the browser adapters', () => {
  it('export what the Node adapters export', () => {
    for (const [nodeSide, browserSide] of [
      [envNode, envBrowser],
      [filesNode, filesBrowser],
      [glNode, glBrowser],
      [threadsNode, threadsBrowser],
    ] as [object, object][]) {
      const missing = Object.keys(nodeSide).filter((k) => !(k in browserSide));
      expect(missing).to.deep.equal([]);
    }
  });

  it('have no environment, no files, WebGL2 then WebGL1, and threads only with Web Workers', () => {
    expect(withEnv({ TSNN_THREADS: '2' }, () => envBrowser.readEnv('TSNN_THREADS'))).to.equal(undefined);
    expect(envBrowser.PLATFORM).to.equal('browser');
    expect(() => filesBrowser.writeFileAtomic('x', new Uint8Array(1))).to.throw(/no file system in a browser: use serialize\(stateDict\)/);
    const gpujs = (webgl2: boolean, webgl: boolean) => ({ GPU: { isWebGL2Supported: webgl2, isWebGLSupported: webgl } });
    expect(glBrowser.glMode(gpujs(true, true))).to.deep.equal({ mode: 'webgl2' });
    expect(glBrowser.glMode(gpujs(false, true))).to.deep.equal({ mode: 'webgl' });
    expect(glBrowser.glMode(gpujs(false, false)).mode).to.equal(null);
    // Node has SharedArrayBuffer but no Web Workers
    expect(threadsBrowser.threadsUnavailable()).to.match(/no Web Workers/);
  });
});
