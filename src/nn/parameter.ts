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
import { noGrad } from '../autograd/grad-mode';

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

/** The weight and (optional) bias of a lazy layer, which stay uninitialised until the first call. */
export interface WeightAndBias {
  weight: Tensor;
  bias: Tensor | null;
}

export function makeLazy(layer: WeightAndBias): void {
  layer.weight = new UninitializedParameter();
  if (layer.bias) layer.bias = new UninitializedParameter();
}

/**
 * Gives a lazy layer's weight its inferred shape (bias: [weightShape[0]]) on `device`, then turns the layer
 * into an instance of `becomes` (PyTorch's cls_to_become: a LazyLinear is an ordinary Linear afterwards),
 * unless it is a user subclass of the lazy class.
 */
export function materializeLazy(layer: WeightAndBias, weightShape: number[], device: DeviceName, lazyClass: Function, becomes: Function): void {
  noGrad(() => {
    materialize(layer.weight, zeros(weightShape, { device }));
    if (layer.bias) materialize(layer.bias, zeros([weightShape[0]], { device }));
  });
  if (Object.getPrototypeOf(layer) === lazyClass.prototype) Object.setPrototypeOf(layer, becomes.prototype);
}
