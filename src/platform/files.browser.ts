/**
 * File I/O in a page: there is no file system. saveFile/loadFile/readHeader (and onnx.exportModel) fail with
 * this message; serialize(stateDict) -> Uint8Array, deserialize(bytes) and loadUrl(url) work everywhere.
 */
const NO_FILES = 'there is no file system in a browser: use serialize(stateDict) / deserialize(bytes) / loadUrl(url) (onnx: exportBytes)';

export const HEAD_BYTES = 8;

function noFiles(): never {
  throw new Error(NO_FILES);
}

export function openRegular(_path: string): { fd: number; size: number } {
  return noFiles();
}

export function readRegularFile(_path: string, _checkHead?: (head: Uint8Array, size: number) => void): Uint8Array {
  return noFiles();
}

export async function readRegularFileAsync(_path: string, _checkHead?: (head: Uint8Array, size: number) => void): Promise<Uint8Array> {
  return noFiles();
}

export function readRegularPrefix(_path: string, _prefix: (read: (n: number) => Uint8Array, size: number) => void): void {
  noFiles();
}

export function removeStaleTemps(_path: string): string[] {
  return [];
}

export function writeFileAtomic(_path: string, _bytes: Uint8Array): void {
  noFiles();
}

export async function writeFileAtomicAsync(_path: string, _bytes: Uint8Array): Promise<void> {
  noFiles();
}
