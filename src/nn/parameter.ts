/**
 * Parameters are plain leaf Tensors with requiresGrad. A lazy layer's parameters start as
 * UninitializedParameter (no data, no shape) and are materialised in place on the first call.
 */
import { Tensor } from '../tensor/tensor';
import { rebind } from '../tensor/rebind';
import { keep } from '../tensor/scope';
import { zeros } from '../tensor/creation';
import type { DeviceName } from '../backend/device';
import { getDefaultDevice } from '../backend/devices';

export class UninitializedParameter extends Tensor {
  constructor(device: DeviceName = getDefaultDevice()) {
    const empty = zeros([0], { device });
    super(empty.storage, [0]);
    empty.dispose();
    this.requiresGrad = true;
  }
  numel(): number {
    throw new Error('numel(): this parameter is uninitialized (a lazy layer materialises it on its first call)');
  }
  toString(): string {
    return '<UninitializedParameter>';
  }
}

export function isUninitialized(t: unknown): boolean {
  return t instanceof UninitializedParameter;
}

/** Turns an UninitializedParameter into a real parameter holding `value`, keeping the object. */
export function materialize(p: Tensor, value: Tensor): Tensor {
  rebind(p, value);
  Object.setPrototypeOf(p, Tensor.prototype);
  p.requiresGrad = true;
  keep(p);
  return p;
}

/** Makes a tensor a parameter: a leaf that requires grad. */
export function asParameter(owner: string, t: Tensor): Tensor {
  if (!t.isLeaf) {
    throw new Error(`${owner}: a parameter must be a leaf tensor, but this one was computed by ${t.gradFn?.name}; use .detach() first`);
  }
  t.requiresGrad = true;
  return keep(t);
}
