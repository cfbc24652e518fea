/**
 * A small typed WebAssembly binary emitter: only the sections and opcodes the direct kernels need
 * (one imported memory, functions over i32 and v128 locals, structured loops, SIMD f32x4 arithmetic).
 * A dependency-free stand-in for a WAT assembler: kernels are built as instruction lists at run time,
 * specialised on their tile shape, and handed to `new WebAssembly.Module`.
 */

export type ValType = 'i32' | 'v128';
const VALTYPE: Record<ValType, number> = { i32: 0x7f, v128: 0x7b };

/** Unsigned LEB128. */
function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

/** Signed LEB128 (i32 constants). */
function sleb(n: number, out: number[]): void {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function name(s: string, out: number[]): void {
  const bytes = new TextEncoder().encode(s);
  uleb(bytes.length, out);
  out.push(...bytes);
}

const OPS = { 'i32.add': 0x6a, 'i32.sub': 0x6b, 'i32.mul': 0x6c, 'i32.eqz': 0x45, 'i32.lt_s': 0x48, 'i32.ge_s': 0x4e } as const;

/** SIMD opcodes used here (prefix 0xfd, then the LEB128 sub-opcode). */
const SIMD = {
  'v128.load': 0x00,
  'v128.load32_splat': 0x09,
  'v128.store': 0x0b,
  'i32x4.splat': 0x11,
  'f32x4.add': 0xe4,
  'f32x4.mul': 0xe6,
  'f32x4.max': 0xe9,
  'f32x4.relaxed_madd': 0x105,
} as const;
export type SimdOp = keyof typeof SIMD;

/** Instructions of one function body; every method appends and returns `this`. */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(readonly params: ValType[]) {}

  /** A new local of `type`; its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  get(i: number): this {
    this.bytes.push(0x20);
    uleb(i, this.bytes);
    return this;
  }
  set(i: number): this {
    this.bytes.push(0x21);
    uleb(i, this.bytes);
    return this;
  }
  tee(i: number): this {
    this.bytes.push(0x22);
    uleb(i, this.bytes);
    return this;
  }
  i32(n: number): this {
    this.bytes.push(0x41);
    sleb(n, this.bytes);
    return this;
  }
  op(o: keyof typeof OPS): this {
    this.bytes.push(OPS[o]);
    return this;
  }
  /** A SIMD instruction; loads and stores take a static byte offset (alignment hint: natural). */
  simd(o: SimdOp, offset?: number): this {
    this.bytes.push(0xfd);
    uleb(SIMD[o], this.bytes);
    if (o === 'v128.load' || o === 'v128.store') {
      uleb(4, this.bytes); // align 2^4
      uleb(offset ?? 0, this.bytes);
    } else if (o === 'v128.load32_splat') {
      uleb(2, this.bytes);
      uleb(offset ?? 0, this.bytes);
    }
    return this;
  }
  /** i32.load / i32.store with a static byte offset (alignment hint: natural) */
  i32Load(offset: number): this {
    this.bytes.push(0x28, 2);
    uleb(offset, this.bytes);
    return this;
  }
  i32Store(offset: number): this {
    this.bytes.push(0x36, 2);
    uleb(offset, this.bytes);
    return this;
  }
  /** `loop` with an empty block type; `br_if 0` inside jumps back to its start. */
  loop(body: (c: this) => void): this {
    this.bytes.push(0x03, 0x40);
    body(this);
    this.bytes.push(0x0b);
    return this;
  }
  /** `block` with an empty block type; `br_if 0` inside jumps past its end. */
  block(body: (c: this) => void): this {
    this.bytes.push(0x02, 0x40);
    body(this);
    this.bytes.push(0x0b);
    return this;
  }
  brIf(depth: number): this {
    this.bytes.push(0x0d);
    uleb(depth, this.bytes);
    return this;
  }

  /** The encoded body: local declarations (one entry per local, simple over compact), code, `end`. */
  encode(): number[] {
    const out: number[] = [];
    uleb(this.locals.length, out);
    for (const t of this.locals) {
      uleb(1, out);
      out.push(VALTYPE[t]);
    }
    out.push(...this.bytes, 0x0b);
    return out;
  }
}

export interface FunctionDef {
  name: string;
  code: Code;
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  uleb(content.length, out);
  out.push(...content);
}

/**
 * A module importing `env.memory` (initial `pages`; `shared` needs `maxPages`) and exporting each
 * function, all of type (params) -> ().
 */
export function encodeModule(funcs: FunctionDef[], memory: { pages: number; maxPages?: number; shared?: boolean }): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  uleb(funcs.length, types);
  for (const f of funcs) {
    types.push(0x60);
    uleb(f.code.params.length, types);
    for (const p of f.code.params) types.push(VALTYPE[p]);
    uleb(0, types);
  }
  section(1, types, out);

  const imports: number[] = [];
  uleb(1, imports);
  name('env', imports);
  name('memory', imports);
  imports.push(0x02);
  const flags = (memory.maxPages !== undefined ? 1 : 0) | (memory.shared ? 2 : 0);
  imports.push(flags);
  uleb(memory.pages, imports);
  if (memory.maxPages !== undefined) uleb(memory.maxPages, imports);
  section(2, imports, out);

  const fns: number[] = [];
  uleb(funcs.length, fns);
  funcs.forEach((_, i) => uleb(i, fns));
  section(3, fns, out);

  const exports: number[] = [];
  uleb(funcs.length, exports);
  funcs.forEach((f, i) => {
    name(f.name, exports);
    exports.push(0x00);
    uleb(i, exports);
  });
  section(7, exports, out);

  const code: number[] = [];
  uleb(funcs.length, code);
  for (const f of funcs) {
    const body = f.code.encode();
    uleb(body.length, code);
    code.push(...body);
  }
  section(10, code, out);
  return Uint8Array.from(out);
}
