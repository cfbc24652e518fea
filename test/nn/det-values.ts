/**
 * Deterministic pseudo-random values that test/fixtures/gen_resnet18.py computes bit for bit in numpy, so a
 * fixture can name its weights, inputs and projection vectors instead of storing them. Counter-based:
 * element i of stream s of name `name` is mix32(key(name, s) ^ mix32(i)), independent of any other
 * element, so both sides can generate any slice in any order.
 */

/** lowbias32 (Chris Wellons): a 32-bit integer hash. */
export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** FNV-1a over the name's UTF-8 bytes. */
export function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

export function streamKey(name: string, stream: number): number {
  return mix32((fnv1a(name) + Math.imul(stream, 0x9e3779b9)) >>> 0);
}

/** n pseudo-random uint32 values of stream `stream` of `name`. */
export function bits(name: string, stream: number, n: number): Uint32Array {
  const key = streamKey(name, stream);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = mix32(key ^ mix32(i));
  return out;
}

/** Values k / 2^23 - 1 in [-1, 1) from the top 24 bits (exact in float32). */
export function uniform(name: string, stream: number, n: number): Float64Array {
  const b = bits(name, stream, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (b[i] >>> 8) / 2 ** 23 - 1;
  return out;
}

/** ±1 from the lowest bit. */
export function signs(name: string, stream: number, n: number): Float64Array {
  const b = bits(name, stream, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = b[i] & 1 ? 1 : -1;
  return out;
}
