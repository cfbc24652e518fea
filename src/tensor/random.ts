/** The seeded generator behind rand/randn/initialisers/dropout: xoshiro128** on the host. */
let state = new Uint32Array(4);

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function manualSeed(seed: number): void {
  const next = splitmix32(seed);
  state = Uint32Array.from([next(), next(), next(), next()]);
}
manualSeed(Date.now() & 0xffffffff);

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** How many numbers the generator has drawn (the graph capture checks a forward draws none). */
export const rngStats = { draws: 0 };

/** One xoshiro128** step over `s` (advanced in place). */
function step(s: Uint32Array): number {
  const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
  const t = (s[1] << 9) >>> 0;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

function nextU32(): number {
  rngStats.draws++;
  return step(state);
}

/** Uniform in [0, 1). */
export function random(): number {
  return nextU32() / 4294967296;
}

export function fillUniform(out: Float32Array, lo = 0, hi = 1): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * random();
  return out;
}

export function fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - random();
    const u2 = random();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * A generator of its own (PyTorch's `torch.Generator`): same algorithm as the global one, separate state,
 * so a seeded data loader's order does not depend on (or disturb) the draws of initialisers and dropout.
 */
export class Generator {
  private readonly s: Uint32Array;
  constructor(seed: number) {
    const next = splitmix32(seed);
    this.s = Uint32Array.from([next(), next(), next(), next()]);
  }
  /** Uniform in [0, 1). */
  random(): number {
    return step(this.s) / 4294967296;
  }
}

/** Fisher–Yates permutation of 0..n-1 (data loaders), from `gen` or the global generator. */
export function randperm(n: number, gen?: Generator): number[] {
  const draw = gen ? () => gen.random() : random;
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(draw() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
