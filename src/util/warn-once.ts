/** Warnings shown once per distinct message per process, like Python's default warnings filter. */
const shown = new Set<string>();

export function warnOnce(message: string): void {
  if (shown.has(message)) return;
  shown.add(message);
  console.warn(`tsnn: ${message}`);
}
