/** Whether ops record the graph. `noGrad(fn)` turns recording off inside fn, like torch.no_grad(). */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

export function setGradEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

export function noGrad<T>(fn: () => T): T {
  const was = setGradEnabled(false);
  try {
    return fn();
  } finally {
    setGradEnabled(was);
  }
}

export function enableGrad<T>(fn: () => T): T {
  const was = setGradEnabled(true);
  try {
    return fn();
  } finally {
    setGradEnabled(was);
  }
}
