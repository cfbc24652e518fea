/**
 * The stack of modules currently inside `call`, so a layer deep in a model can name its path from the
 * module the user called (`0.net.2 (Linear): expected input [*, 64], got [2, 20]`).
 */
import type { Module } from './module';

const frames: Module[] = [];

export const callStack = {
  within<T>(m: Module, fn: () => T): T {
    frames.push(m);
    try {
      return fn();
    } finally {
      frames.pop();
    }
  },
};

/** Dotted path of `m` from the outermost module being called ('' when m is that module or not inside a call). */
export function currentPath(m: Module): string {
  const root = frames[0];
  if (!root || root === m) return '';
  for (const [name, mod] of root.namedModules()) if (mod === m) return name;
  return '';
}
