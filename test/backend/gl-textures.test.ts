/**
 * gl-textures.ts takes gpu.js's texture classes from two probe kernels, and kernel-cache.ts releases GL
 * kernels. gpu.js points the vertex attributes at a kernel's vertex buffer only when it builds a kernel, so
 * freeing the buffer of the last-built kernel breaks every later draw of an already built one (WebGL:
 * INVALID_OPERATION, nothing drawn). Here kernels built before a probe, and before an evicted kernel, still
 * compute the right values afterwards.
 */
import { expect } from 'chai';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Backend, DeviceBuffer } from '../../src/backend/gpujs-backend';
import { textureClasses } from '../../src/backend/gl-textures';
import { releaseGlKernel } from '../../src/backend/kernel-cache';
import { testDevices } from '../helpers';

const DOUBLE = 'function(in0) { return in0[this.thread.x] * 2; }';
const TRIPLE = 'function(in0) { return in0[this.thread.x] * 3; }';

(testDevices().includes('gpu') ? describe : describe.skip)('gpu: texture-class probe and kernel release keep built kernels drawing', () => {
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]);
  // every buffer is released before its backend is destroyed (a finalizer deleting a texture of a destroyed context throws)
  const made: DeviceBuffer[] = [];
  const keep = (buf: DeviceBuffer) => (made.push(buf.retain()), buf);
  const run = (b: Backend, source: string) =>
    Array.from(b.read(keep(b.run({ source, outSize: x.length, inputs: [keep(b.upload(x))], scalars: [] }))));
  const destroy = (b: Backend) => {
    for (const buf of made.splice(0)) buf.release();
    b.destroy();
  };

  it('a kernel built before the probe runs correctly after it; the probed classes are those of gpu.js results', () => {
    const b = new Backend('gpu');
    try {
      expect(run(b, DOUBLE)).to.deep.equal([2, 4, 6, 8, 10, 12]);
      const gpu = (b as any).gpu;
      const classes = textureClasses(gpu);
      expect(run(b, DOUBLE)).to.deep.equal([2, 4, 6, 8, 10, 12]);
      const out: any = keep(b.run({ source: DOUBLE, outSize: x.length, inputs: [keep(b.upload(x))], scalars: [] })).gl!.texture;
      expect(out.constructor).to.equal(classes.flat);
      expect(classes.quads.name).to.match(/Array4Float/);
    } finally {
      destroy(b);
    }
  });

  it('releasing the last-built kernel leaves earlier kernels drawing', () => {
    const b = new Backend('gpu');
    try {
      expect(run(b, DOUBLE)).to.deep.equal([2, 4, 6, 8, 10, 12]);
      expect(run(b, TRIPLE)).to.deep.equal([3, 6, 9, 12, 15, 18]);
      const gpu = (b as any).gpu;
      const last = gpu.kernels[gpu.kernels.length - 1];
      releaseGlKernel(gpu, last);
      expect(run(b, DOUBLE)).to.deep.equal([2, 4, 6, 8, 10, 12]);
    } finally {
      destroy(b);
    }
  });

  it('destroying a backend with unreleased textures: no finalizer touches the dead context afterwards', async () => {
    // (in a page a texture deleted through a destroyed context throws "Invalid GL context" from the finalizer)
    v8.setFlagsFromString('--expose-gc');
    const gc: () => void = vm.runInNewContext('gc');
    const b = new Backend('gpu');
    let deletesAfterDestroy = 0;
    let destroyed = false;
    (() => {
      // dropped without release: only a finalizer would delete these textures
      for (let i = 0; i < 20; i++) {
        const out = b.run({ source: DOUBLE, outSize: x.length, inputs: [b.upload(x)], scalars: [] });
        const tex: any = out.gl!.texture;
        const del = tex.delete.bind(tex);
        tex.delete = () => {
          if (destroyed) deletesAfterDestroy++;
          del();
        };
      }
    })();
    expect(b.stats.resident).to.be.greaterThan(0);
    b.destroy();
    destroyed = true;
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(deletesAfterDestroy).to.equal(0);
  });
});
