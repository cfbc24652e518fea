/** Device limits: oversized tensors are refused before allocation; webasm that cannot reserve memory is reported and passed over. */
import { expect } from 'chai';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { backendFor, ones, tensor, zeros, rand, arange, full } from '../../src';
import { WASM_INDEX_LIMIT, typedArrayMaxLength } from '../../src/backend/limits';
import { repoRoot, testDevices } from '../helpers';
import { throwsWith } from '../ops/util';

describe('backend: device limits', () => {
  const devices = testDevices();

  it('the limits are what each device can hold: webasm 2^24 elements, gpu MAX_TEXTURE_SIZE^2, cpu the typed-array length', () => {
    if (devices.includes('webasm')) expect(backendFor('webasm').limit.elements).to.equal(WASM_INDEX_LIMIT);
    expect(backendFor('cpu').limit.elements).to.be.at.most(typedArrayMaxLength());
    if (devices.includes('gpu')) {
      const gl = require('gl')(1, 1);
      const side = gl.getParameter(gl.MAX_TEXTURE_SIZE);
      expect(backendFor('gpu').limit.elements).to.equal(Math.min(side * side, backendFor('cpu').limit.elements));
    }
  });

  for (const device of devices) {
    it(`${device}: creation ops refuse a tensor over the limit, naming the op, the shape and the device`, () => {
      // over every device's limit (cpu's is the engine's 2^32-element Float32Array)
      throwsWith(
        () => zeros([2 ** 33], { device }),
        /^zeros: a tensor of shape \[8589934592\], 8589934592 elements \(32\.0 GiB as float32\) is more than device/,
        `'${device}'`,
      );
      throwsWith(() => ones([65536, 65537], { device }), /^ones: /, '[65536, 65537]', '16.0 GiB');
      throwsWith(() => rand([1e10], { device }), /^rand: /, '[10000000000]');
      throwsWith(() => full([1e5, 1e5], 1, { device }), /^full: /, '[100000, 100000]');
      throwsWith(() => arange(2 ** 40, undefined, 1, { device }), /^arange: /, `device '${device}'`);
      throwsWith(() => tensor([1], { shape: [2 ** 33], device }), /^tensor: /, '[8589934592]');
      if (device !== 'cpu') {
        // the cases on the default device: 8 GiB and 16 GiB, over webasm's and GL's limits
        throwsWith(() => zeros([2 ** 31], { device }), /^zeros: /, '[2147483648]', `'${device}'`);
        throwsWith(() => zeros([65536, 65536], { device }), /^zeros: /, '[65536, 65536]');
      }
    });

    it(`${device}: exactly the limit is allowed where it is small enough to try, one more is refused`, function () {
      const n = backendFor(device).limit.elements;
      if (n > 2 ** 26) this.skip(); // 256 MB and up: not in a unit test
      const x = zeros([n], { device });
      expect(x.numel()).to.equal(n);
      x.dispose();
      throwsWith(() => zeros([n + 1], { device }), /^zeros: /, `at most ${n} elements`);
    });
  }

  if (devices.includes('webasm')) {
    it('webasm: an op whose result would be over the limit is refused naming the op (it used to return wrong values past 2^24)', () => {
      const col = zeros([5000, 1], { device: 'webasm' });
      const row = zeros([1, 5000], { device: 'webasm' });
      throwsWith(
        () => col.add(row),
        /^add: a tensor of 25000000 elements .* more than device 'webasm' can hold: at most 16777216 elements/,
        "use device 'cpu'",
      );
      throwsWith(() => col.matmul(row), /^matmul: /, '25000000 elements');
      throwsWith(() => zeros([4096, 4097], { device: 'cpu' }).to('webasm'), /^to: /, '16781312 elements');
    });
  }

  describe('WebAssembly memory that cannot be reserved (ulimit -v)', () => {
    const dist = path.join(repoRoot(), 'dist/src/index.js');
    const script = `
      const t = require(${JSON.stringify(dist)});
      const webasm = t.deviceReport().find((d) => d.device === 'webasm');
      const device = t.getDefaultDevice();
      const net = new t.nn.Sequential(new t.nn.Linear(4, 8), new t.nn.ReLU(), new t.nn.Linear(8, 1));
      const opt = new t.optim.Adam(net.parameters(), { lr: 0.01 });
      const x = t.rand([16, 4]), y = t.rand([16, 1]);
      let loss = 0;
      for (let i = 0; i < 10; i++) { opt.zeroGrad(); const l = t.F.mseLoss(net(x), y); l.backward(); opt.step(); loss = l.item(); }
      t.getDefaultDevice();
      console.log(JSON.stringify({ webasm, device, loss }));`;

    /** Runs the script with the address space limited to `kb`; null where the shell or node cannot run so. */
    function underUlimit(kb: number): { report: any; stderr: string } | null {
      const env = { ...process.env };
      delete env.DISPLAY; // no GL: 'auto' chooses between webasm and cpu
      delete env.TSNN_DEVICE;
      const r = spawnSync('bash', ['-c', `ulimit -v ${kb} && exec "$0" -e "$1"`, process.execPath, script], {
        encoding: 'utf8',
        env,
        timeout: 120_000,
      });
      if (r.error || r.status !== 0) {
        if (/ulimit|Cannot allocate|Fatal process out of memory/.test(`${r.stderr}`) || r.error) return null;
        throw new Error(`child failed (${r.status}): ${r.stderr.slice(-800)}`);
      }
      return { report: JSON.parse(r.stdout.trim().split('\n').pop()!), stderr: r.stderr };
    }

    // measured with Node 20: under 8 GB node starts but no WebAssembly memory can be reserved (the probe's
    // kernel fails); under 24 GB the probe's kernel runs but a model's kernels fail a few later
    for (const kb of [8_000_000, 24_000_000]) {
      it(`under ulimit -v ${kb} KB: deviceReport says why, 'auto' is cpu with one warning, and a model trains`, function () {
        if (process.platform !== 'linux') this.skip();
        const r = underUlimit(kb);
        if (!r) this.skip();
        expect(r!.report.webasm.ok).to.equal(false);
        expect(r!.report.webasm.why).to.match(/WebAssembly memory could not be reserved.*ulimit -v/);
        expect(r!.report.device).to.equal('cpu');
        expect(Number.isFinite(r!.report.loss)).to.equal(true);
        const warnings = r!.stderr.split('\n').filter((l) => l.includes("device 'webasm' is not available here, 'auto' uses 'cpu'"));
        expect(warnings).to.have.length(1);
      });
    }
  });
});
