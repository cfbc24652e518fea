/** Configuration from the environment (Node). The browser build swaps in env.browser.ts, which has none. */

/** An environment variable's value, or undefined. */
export function readEnv(name: string): string | undefined {
  return process.env[name];
}

/** Which platform adapter this build carries ('node' here, 'browser' in env.browser.ts). */
export const PLATFORM: 'node' | 'browser' = 'node';

/** Longest Float32Array this engine allocates (Node: buffer.constants.MAX_LENGTH). */
export function typedArrayMaxLength(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const max = require('buffer').constants.MAX_LENGTH;
  return typeof max === 'number' && max > 0 ? max : 2 ** 31 - 1;
}

/** Bytes of physical memory here. */
export function hostMemoryBytes(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('os').totalmem();
}
