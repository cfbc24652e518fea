/**
 * A page has no kernel store: nothing is cached across page loads (kernel-store.ts is the Node one). The
 * in-memory artefact cache of src/backend/wasm-artefacts.ts still works within a page.
 */
export const MAX_ENTRY = 0;

export const kernelStoreStats = { reads: 0, hits: 0, misses: 0, rejected: 0, writes: 0, writeErrors: 0 };

export interface KernelStore {
  readonly dir: string;
  get(key: string): Uint8Array | null;
  put(key: string, payload: Uint8Array): void;
}

export function hashKey(_text: string): string {
  throw new Error('internal: no kernel store in a browser');
}

export function kernelStoreDir(): string | null {
  return null;
}

export function checkStoreDir(_dir: string): string | null {
  return 'there is no file system in a browser';
}

export const kernelStoreRefusal: { dir: string | null; why: string | null } = { dir: null, why: null };

export function kernelStore(): KernelStore | null {
  return null;
}

export function resetKernelStores(): void {}
