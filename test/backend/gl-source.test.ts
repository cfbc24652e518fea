/**
 * gl-source.ts: on GL, `(r | 0)` of an integer loop counter is the counter itself (gpu.js would translate
 * `|` into a GLSL loop over the bits, in matmul's innermost loop); anything else is left alone. On the gpu
 * device, the quads matmul's compiled fragment shader calls no bitwiseOr, and its values are the reference's.
 */
import { expect } from 'chai';
import { glSource } from '../../src/backend/gl-source';
import { backendFor } from '../../src/backend/devices';
import { manualSeed, rand } from '../../src';
import { expectClose, testDevices } from '../helpers';

describe('gl-source: integer loop counters read without | 0 on GL', () => {
  it('drops | 0 on counters of loops with integer start and step, and only there', () => {
    const src = [
      'function(in0, s0) {',
      'let acc = 0.0;',
      'for (let r2 = 0; r2 < 64; r2 += 4) { acc += in0[(r2 | 0) * 3] + in0[((r2 | 0) + 1)]; }',
      'for (let r3 = 5; r3 < 9; r3++) { acc += in0[(r3 | 0)]; }',
      'let v = s0 * 0.5;',
      'return acc + (v | 0) + (q | 0);',
      '}',
    ].join('\n');
    const out = glSource(src);
    expect(out).to.contain('in0[r2 * 3] + in0[(r2 + 1)]');
    expect(out).to.contain('in0[r3]');
    // not loop counters: a truncation that changes the value, kept
    expect(out).to.contain('(v | 0)');
    expect(out).to.contain('(q | 0)');
    expect(glSource('function(a) { return (a[0] | 0); }')).to.equal('function(a) { return (a[0] | 0); }');
  });

  (testDevices().includes('gpu') ? it : it.skip)('gpu: the quads matmul shader calls no bitwiseOr, and equals the cpu device', () => {
    manualSeed(4);
    const a = rand([12, 40]);
    const b = rand([40, 16]);
    const want = Array.from(a.matmul(b).dataSync());
    const be = backendFor('gpu');
    const got = Array.from(a.to('gpu').matmul(b.to('gpu')).dataSync());
    expectClose(got, want, 1e-5);
    const shaders: string[] = [];
    for (const k of (be.kernels as any).map.values()) {
      const fs: string | null | undefined = k.kernel?.compiledFragmentShader;
      if (fs && fs.includes('user_c3')) shaders.push(fs.slice(fs.indexOf('void kernel()')));
    }
    expect(shaders.length, 'a compiled quads matmul kernel').to.be.greaterThan(0);
    for (const s of shaders) expect(s).not.to.contain('bitwiseOr(');
  });
});
