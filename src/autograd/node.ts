/**
 * A node of the reverse-mode tape: the op that made a tensor, its differentiable inputs, and the
 * rule that maps the output's gradient to the inputs' gradients. Ops create nodes through `record`,
 * right beside their forward kernel, so an op and its gradient are defined in one place.
 */
import { isGradEnabled } from './grad-mode';
import { fmtShape } from '../tensor/shape';

/**
 * What the tape needs of a tensor. Tensor (tensor/tensor.ts) has it: the tape is generic over the tensor
 * type (`Node<Tensor>`), so autograd never imports tensor.ts, which imports autograd.
 */
export interface TapeTensor {
  readonly shape: readonly number[];
  readonly storage: { readonly version: number };
  requiresGrad: boolean;
  gradFn: Node<any> | null;
}

export type GradRule<T> = (grad: T) => (T | null | undefined)[];

interface Saved<T> {
  tensor: T;
  version: number;
}

export class Node<T extends TapeTensor = any> {
  private saved: Saved<T>[];
  /**
   * The node that made each input, captured now: an in-place op later gives that tensor a new gradFn,
   * but this node's gradient still belongs to the value it read (null for leaves and non-grad inputs).
   */
  next: (Node<T> | null)[];
  constructor(
    readonly name: string,
    public inputs: (T | null)[],
    private rule: GradRule<T> | null,
    saved: T[],
  ) {
    this.next = inputs.map((t) => t?.gradFn ?? null);
    this.saved = saved.map((tensor) => ({ tensor, version: tensor.storage.version }));
  }

  /** Runs the rule after checking nothing it saved was modified in place since. */
  apply(grad: T): (T | null | undefined)[] {
    if (!this.rule) {
      throw new Error(
        `${this.name}: trying to backward through the graph a second time (its saved values were freed); call backward({ retainGraph: true }) the first time`,
      );
    }
    for (const s of this.saved) {
      if (s.tensor.storage.version !== s.version) {
        throw new Error(
          `${this.name}: one of the tensors needed for gradient computation has been modified by an in-place operation: ` +
            `a tensor of shape ${fmtShape(s.tensor.shape)} is at version ${s.tensor.storage.version}; expected version ${s.version}`,
        );
      }
    }
    return this.rule(grad);
  }

  /**
   * Drops everything this node holds once its gradient has been computed: the saved values, the rule
   * (whose closure holds them too), and the inputs and their nodes, so a loss kept after backward (a list
   * of losses for logging) holds its own value, not the step's graph. Nothing is disposed here: those
   * tensors may be the user's (inputs, parameters, activations they keep).
   */
  release(): void {
    this.rule = null;
    this.saved = [];
    this.inputs = [];
    this.next = [];
  }
}

/** What an op was called with beyond its differentiable inputs (dims, sizes, plain-number operands). */
export type OpAttrs = Readonly<Record<string, unknown>>;

/**
 * Export-time view of the op stream (src/onnx/trace.ts installs it): every op run in grad mode, with
 * its inputs and attributes, whether or not anything requires grad. Ops run under noGrad (the inner
 * steps of a composite op like softmax) are not reported: the op that records them is.
 */
// (its tensors are typed `any` here: the observer, onnx/trace.ts, takes them as Tensor, which autograd does not import)
export type OpObserver = (out: any, name: string, inputs: readonly any[], attrs: OpAttrs) => void;
export const opTrace: { observer: OpObserver | null } = { observer: null };

/** Reports an op that has no gradient (comparisons, argmax, oneHot) to the observer; returns `out`. */
export function observeOp<T extends TapeTensor>(out: T, name: string, inputs: readonly (T | null | undefined)[], attrs: OpAttrs = {}): T {
  if (opTrace.observer && isGradEnabled()) opTrace.observer(out, name, inputs, attrs);
  return out;
}

/**
 * Attaches a node to `out` when grad mode is on and any input requires grad.
 * `saved` must list every tensor the rule reads (inputs and the output alike), for the in-place
 * version check: a rule reading a tensor that was overwritten since would compute a wrong gradient.
 * `attrs` is for the op observer only (ONNX export).
 */
export function record<T extends TapeTensor>(
  out: T,
  name: string,
  inputs: (T | null | undefined)[],
  rule: GradRule<T>,
  saved: (T | number | null | undefined)[] = [],
  attrs: OpAttrs = {},
): T {
  if (!isGradEnabled()) return out;
  if (opTrace.observer) opTrace.observer(out, name, inputs, attrs);
  const live = inputs.map((t) => (t && t.requiresGrad ? t : null));
  if (!live.some((t) => t)) return out;
  out.gradFn = new Node<T>(
    name,
    live,
    rule,
    saved.filter((t): t is T => typeof t === 'object' && t !== null),
  );
  out.requiresGrad = true;
  return out;
}
