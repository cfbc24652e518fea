/** How an error message names a value of the wrong kind: its type, and the value itself when short. */
export function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (typeof x === 'string') return `string ${JSON.stringify(x.length > 20 ? `${x.slice(0, 20)}…` : x)}`;
  if (typeof x === 'number' || typeof x === 'boolean') return `${typeof x} ${String(x)}`;
  if (typeof x === 'bigint') return `bigint ${x}n`;
  if (typeof x === 'function') return `function ${x.name || '(anonymous)'}`;
  const name = (x as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}
