/**
 * The GL pile-up warning: textures made and not released since the event loop last turned are counted,
 * and past PILEUP_WARN_AT the user is told once how to free them (a loop that never yields keeps them).
 */
import { expect } from 'chai';
import { TexturePileup, PILEUP_WARN_AT } from '../../src/backend/gl-pileup';

describe('GL texture pile-up warning (a synchronous loop on gpu)', () => {
  it('warns once past the bound since the last turn of the event loop, not while the loop yields', async () => {
    const warned: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => warned.push(m);
    try {
      const p = new TexturePileup();
      let live = 100;
      // a yielding loop: the count since the last turn never reaches the bound, however many in all
      for (let turn = 0; turn < 5; turn++) {
        for (let k = 0; k < PILEUP_WARN_AT / 2; k++) p.made(++live);
        await new Promise((r) => setImmediate(r));
      }
      expect(warned, 'a loop that yields').to.deep.equal([]);
      // a loop that never yields: warned when the bound is reached, once
      for (let k = 0; k < PILEUP_WARN_AT - 1; k++) p.made(++live);
      expect(warned).to.deep.equal([]);
      for (let k = 0; k < 3 * PILEUP_WARN_AT; k++) p.made(++live);
      expect(warned).to.have.length(1);
      expect(warned[0]).to.match(/GL textures .* since the event loop last turned/);
      expect(warned[0]).to.match(/tidy\(\)/);
    } finally {
      console.warn = warn;
    }
  });
});
