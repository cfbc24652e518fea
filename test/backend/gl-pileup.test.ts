/**
 * The GL spill warning: when textures go over the budget and are spilled to host memory, the user is told
 * once, with the textures made since the event loop last turned, why it happens and how to avoid the
 * read-backs (yield once per step, tidy/dispose, or a larger budget).
 */
import { expect } from 'chai';
import { TexturePileup } from '../../src/backend/gl-pileup';

async function warnings(f: () => Promise<void>): Promise<string[]> {
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (m: string) => warned.push(m);
  try {
    await f();
  } finally {
    console.warn = warn;
  }
  return warned;
}

describe('GL texture spill warning (gl-pileup.ts)', () => {
  it('counts textures made since the event loop last turned', async () => {
    const p = new TexturePileup();
    for (let k = 0; k < 500; k++) p.made();
    expect(p.sinceTurn).to.equal(500);
    await new Promise((r) => setImmediate(r));
    expect(p.sinceTurn).to.equal(0);
    p.made();
    expect(p.sinceTurn).to.equal(1);
  });

  it('says once that it is spilling, how many textures since the last turn, that yielding once per step avoids it', async () => {
    const warned = await warnings(async () => {
      const p = new TexturePileup();
      for (let k = 0; k < 5000; k++) p.made();
      p.spilled(3);
      p.spilled(3);
    });
    expect(warned).to.have.length(1);
    expect(warned[0]).to.match(/budget of 3 MiB .*spilled to host memory/);
    expect(warned[0]).to.match(/5000 textures were made since the event loop last turned/);
    expect(warned[0]).to.match(/yield once per step \(`await loss\.data\(\)`\)/);
    expect(warned[0]).to.match(/raise the budget/);
  });
});
