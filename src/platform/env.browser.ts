/** Configuration in a page: there is no environment; setBackendOptions() is the only source (options.ts). */

export function readEnv(_name: string): string | undefined {
  return undefined;
}

export const PLATFORM: 'node' | 'browser' = 'browser';

/** Browsers allow typed arrays of at least 2^31 - 1 elements (Chromium: 2^32 bytes). */
export function typedArrayMaxLength(): number {
  return 2 ** 31 - 1;
}

/** A page is not told the machine's memory (navigator.deviceMemory is rounded and capped at 8 GB). */
export function hostMemoryBytes(): number {
  return Infinity;
}
