/**
 * The stack of modules currently inside `call`, so a layer deep in a model can name its path from the
 * module the user called (`0.net.2 (Linear): expected input [*, 64], got [2, 20]`).
 */
/** What the stack needs of a module (nn.Module has it; structural, so this file does not import module.ts back). */
interface StackModule {
  namedModules(): [string, object][];
}

const frames: StackModule[] = [];

export const callStack = {
  within<T>(m: StackModule, fn: () => T): T {
    frames.push(m);
    try {
      return fn();
    } finally {
      frames.pop();
    }
  },
};

/** Dotted path of `m` from the outermost module being called ('' when m is that module or not inside a call). */
export function currentPath(m: object): string {
  const root = frames[0];
  if (!root || root === m) return '';
  for (const [name, mod] of root.namedModules()) if (mod === m) return name;
  return '';
}
