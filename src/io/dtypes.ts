/**
 * safetensors element types: sizes, the reference's ordering, and conversion between their
 * little-endian bytes and our float32 values.
 *
 * Reading converts every supported dtype to float32 the way `tensor.to(torch.float32)` does
 * (single round-to-nearest-even; I64/U64 are rounded exactly via BigInt, not through a double).
 * Writing converts float32 values the way `tensor.to(dtype)` does for F16/BF16/F64 (RNE; NaN ->
 * 0x7E00 for F16, 0x7FC0 for BF16, as c10's scalar conversions do; torch's AVX2 float->bfloat16 path
 * writes NaN as 0xFFFF instead, so BF16 NaNs are the one place bytes may differ from a torch file) and refuses non-integer or out-of-range values
 * for integer dtypes instead of silently truncating them.
 */

export type SafetensorsDtype =
  'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

interface DtypeInfo {
  /** bytes per element */
  size: number;
  /** position in the reference's `Dtype` enum (its derived `Ord`), used to order tensors on write */
  rank: number;
  /** whether we can write it */
  writable: boolean;
}

/** In the reference's enum order (safetensors/src/tensor.rs `enum Dtype`, "increasing alignment order"). */
export const DTYPES: Readonly<Record<SafetensorsDtype, DtypeInfo>> = {
  BOOL: { size: 1, rank: 0, writable: true },
  U8: { size: 1, rank: 1, writable: true },
  I8: { size: 1, rank: 2, writable: true },
  F8_E5M2: { size: 1, rank: 3, writable: false },
  F8_E4M3: { size: 1, rank: 4, writable: false },
  I16: { size: 2, rank: 5, writable: true },
  U16: { size: 2, rank: 6, writable: true },
  F16: { size: 2, rank: 7, writable: true },
  BF16: { size: 2, rank: 8, writable: true },
  I32: { size: 4, rank: 9, writable: true },
  U32: { size: 4, rank: 10, writable: true },
  F32: { size: 4, rank: 11, writable: true },
  F64: { size: 8, rank: 12, writable: true },
  I64: { size: 8, rank: 13, writable: true },
  U64: { size: 8, rank: 14, writable: true },
};

/** Dtypes newer versions of the reference know but that tsnn cannot convert (clearer error than "unknown"). */
export const KNOWN_UNSUPPORTED = new Set(['F4', 'F6_E2M3', 'F6_E3M2', 'F8_E8M0', 'C64']);

export function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

// ---- decoding ------------------------------------------------------------------------------------

function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

function f8e5m2ToNumber(b: number): number {
  return f16ToNumber(b << 8);
}

/** float8_e4m3fn: bias 7, no infinities, S.1111.111 is NaN. */
function f8e4m3ToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >> 3) & 0xf;
  const m = b & 0x7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (8 + m) * 2 ** (e - 10);
}

/** A 64-bit integer to the nearest float32 (ties to even), in one rounding like static_cast<float>. */
export function bigintToF32(v: bigint): number {
  const neg = v < 0n;
  let a = neg ? -v : v;
  if (a <= 9007199254740992n) return Math.fround(neg ? -Number(a) : Number(a));
  const bits = a.toString(2).length;
  const shift = BigInt(bits - 24);
  let q = a >> shift;
  const rem = a & ((1n << shift) - 1n);
  const half = 1n << (shift - 1n);
  if (rem > half || (rem === half && (q & 1n) === 1n)) q += 1n;
  a = q << shift;
  const x = Number(a); // exact: a has at most 25 significant bits
  return Math.fround(neg ? -x : x);
}

/** Little-endian bytes of `numel` elements of `dtype` to float32 values. */
export function decode(dtype: SafetensorsDtype, bytes: Uint8Array, numel: number): Float32Array {
  const out = new Float32Array(numel);
  if (numel === 0) return out;
  if (dtype === 'F32' && LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(bytes.subarray(0, numel * 4));
    return out;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      for (let k = 0; k < numel; k++) out[k] = dv.getFloat32(4 * k, true);
      break;
    case 'F64':
      for (let k = 0; k < numel; k++) out[k] = dv.getFloat64(8 * k, true);
      break;
    case 'F16':
      for (let k = 0; k < numel; k++) out[k] = f16ToNumber(dv.getUint16(2 * k, true));
      break;
    case 'BF16':
      for (let k = 0; k < numel; k++) {
        u32buf[0] = dv.getUint16(2 * k, true) << 16;
        out[k] = f32buf[0];
      }
      break;
    case 'F8_E5M2':
      for (let k = 0; k < numel; k++) out[k] = f8e5m2ToNumber(bytes[k]);
      break;
    case 'F8_E4M3':
      for (let k = 0; k < numel; k++) out[k] = f8e4m3ToNumber(bytes[k]);
      break;
    case 'I64':
      for (let k = 0; k < numel; k++) out[k] = bigintToF32(dv.getBigInt64(8 * k, true));
      break;
    case 'U64':
      for (let k = 0; k < numel; k++) out[k] = bigintToF32(dv.getBigUint64(8 * k, true));
      break;
    case 'I32':
      for (let k = 0; k < numel; k++) out[k] = dv.getInt32(4 * k, true);
      break;
    case 'U32':
      for (let k = 0; k < numel; k++) out[k] = dv.getUint32(4 * k, true);
      break;
    case 'I16':
      for (let k = 0; k < numel; k++) out[k] = dv.getInt16(2 * k, true);
      break;
    case 'U16':
      for (let k = 0; k < numel; k++) out[k] = dv.getUint16(2 * k, true);
      break;
    case 'I8':
      for (let k = 0; k < numel; k++) out[k] = dv.getInt8(k);
      break;
    case 'U8':
      for (let k = 0; k < numel; k++) out[k] = bytes[k];
      break;
    // torch reads any non-zero byte as True
    case 'BOOL':
      for (let k = 0; k < numel; k++) out[k] = bytes[k] !== 0 ? 1 : 0;
      break;
  }
  return out;
}

// ---- encoding ------------------------------------------------------------------------------------

/** Round half to even, for non-negative x. */
function rne(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** float32 value -> IEEE half bits, round to nearest even (NaN -> 0x7E00 with the sign kept). */
export function f32ToF16Bits(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  if (exp === 0xff) return sign | ((x & 0x7fffff) !== 0 ? 0x7e00 : 0x7c00);
  const a = Math.abs(f32buf[0]);
  if (a < 2 ** -14) return sign | rne(a * 2 ** 24); // subnormal (1024 rounds up to the smallest normal)
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  const m = rne((a / 2 ** e - 1) * 1024); // 0..1024; 1024 carries into the exponent (up to infinity)
  return sign | (((e + 15) << 10) + m);
}

/** float32 value -> bfloat16 bits, as c10::BFloat16's round_to_nearest_even. */
export function f32ToBf16Bits(v: number): number {
  f32buf[0] = v;
  if (Number.isNaN(f32buf[0])) return 0x7fc0;
  const x = u32buf[0];
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

const INT_RANGE: Partial<Record<SafetensorsDtype, [number, number]>> = {
  I32: [-(2 ** 31), 2 ** 31 - 1],
  U32: [0, 2 ** 32 - 1],
  I16: [-(2 ** 15), 2 ** 15 - 1],
  U16: [0, 2 ** 16 - 1],
  I8: [-128, 127],
  U8: [0, 255],
  I64: [-(2 ** 63), 2 ** 63 - 1], // bounds as doubles: 2^63 itself is excluded below
  U64: [0, 2 ** 64 - 1],
};

/**
 * float32 values to little-endian bytes of `dtype`, written into `out` (exactly numel*size bytes).
 * `bad(index, value, why)` is called (and must throw) for a value the dtype cannot hold.
 */
export function encodeInto(
  dtype: SafetensorsDtype,
  values: Float32Array,
  out: Uint8Array,
  bad: (index: number, value: number, why: string) => never,
): void {
  const numel = values.length;
  if (dtype === 'F32' && LITTLE_ENDIAN) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, numel * 4));
    return;
  }
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const range = INT_RANGE[dtype];
  if (range) {
    for (let k = 0; k < numel; k++) {
      const v = values[k];
      if (!Number.isFinite(v)) bad(k, v, 'is not finite');
      if (!Number.isInteger(v)) bad(k, v, 'is not an integer');
      if (v < range[0] || v > range[1] || ((dtype === 'I64' || dtype === 'U64') && v >= range[1])) bad(k, v, 'is out of range');
    }
  }
  switch (dtype) {
    case 'F32':
      for (let k = 0; k < numel; k++) dv.setFloat32(4 * k, values[k], true);
      break;
    case 'F64':
      for (let k = 0; k < numel; k++) dv.setFloat64(8 * k, values[k], true);
      break;
    case 'F16':
      for (let k = 0; k < numel; k++) dv.setUint16(2 * k, f32ToF16Bits(values[k]), true);
      break;
    case 'BF16':
      for (let k = 0; k < numel; k++) dv.setUint16(2 * k, f32ToBf16Bits(values[k]), true);
      break;
    case 'I64':
      for (let k = 0; k < numel; k++) dv.setBigInt64(8 * k, BigInt(values[k]), true);
      break;
    case 'U64':
      for (let k = 0; k < numel; k++) dv.setBigUint64(8 * k, BigInt(values[k]), true);
      break;
    case 'I32':
      for (let k = 0; k < numel; k++) dv.setInt32(4 * k, values[k], true);
      break;
    case 'U32':
      for (let k = 0; k < numel; k++) dv.setUint32(4 * k, values[k], true);
      break;
    case 'I16':
      for (let k = 0; k < numel; k++) dv.setInt16(2 * k, values[k], true);
      break;
    case 'U16':
      for (let k = 0; k < numel; k++) dv.setUint16(2 * k, values[k], true);
      break;
    case 'I8':
      for (let k = 0; k < numel; k++) dv.setInt8(k, values[k]);
      break;
    case 'U8':
      for (let k = 0; k < numel; k++) out[k] = values[k];
      break;
    // like tensor.to(torch.bool): anything non-zero (NaN included) is True
    case 'BOOL':
      for (let k = 0; k < numel; k++) out[k] = values[k] !== 0 ? 1 : 0;
      break;
    default:
      throw new Error(`internal: cannot encode ${dtype}`);
  }
}
