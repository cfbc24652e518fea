/**
 * The slice of the WebAssembly JS API the direct kernels use, typed here: the project compiles against
 * ES2023 without DOM typings, which is where `WebAssembly` is declared.
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The runtime's WebAssembly, or null where there is none. */
export const wasmApi: WasmApi | null = ((globalThis as any).WebAssembly as WasmApi | undefined) ?? null;

export const PAGE_BYTES = 65536;
