/** The backward pass: topological order over the tape, gradient accumulation into leaves' `.grad`. */
import { tensorSerial, type Tensor } from '../tensor/tensor';
import { isContiguousTensor } from '../ops/kernel';
import type { Node } from './node';
import { noGrad } from './grad-mode';
import { fmtShape, sameShape } from '../tensor/shape';
import { keep } from '../tensor/scope';

export interface BackwardOptions {
  retainGraph?: boolean;
}

export function backward(root: Tensor, grad: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward: tensor does not require grad and has no gradFn');
  if (!sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient of shape ${fmtShape(grad.shape)} does not match the tensor's shape ${fmtShape(root.shape)}`);
  }
  const firstInternal = tensorSerial();
  const reached = new Map<Tensor, Tensor[]>(); // leaf -> the gradients that reached it, in order
  const onLeaf = (leaf: Tensor, g: Tensor) => {
    const list = reached.get(leaf);
    if (list) list.push(g);
    else reached.set(leaf, [g]);
  };
  noGrad(() => {
    if (!root.gradFn) onLeaf(root, grad);
    else propagate(root.gradFn, grad, { onLeaf, release: !opts.retainGraph });
    accumulate(reached, firstInternal);
  });
}

export interface PropagateOptions {
  /** inputs where propagation stops and their gradient is handed to onLeaf (default: tensors with no node) */
  stopAt?: (t: Tensor) => boolean;
  /** receives each gradient that reaches a leaf (or a stopAt tensor); called once per edge */
  onLeaf: (t: Tensor, grad: Tensor) => void;
  /** free each node's saved values once it has run */
  release?: boolean;
}

/**
 * Runs the gradient rules from `start` (whose output gradient is `seed`) in reverse topological order,
 * summing the gradients that reach a node before it runs. Shared by backward() and nn.compile's capture.
 */
export function propagate(start: Node, seed: Tensor, opts: PropagateOptions): void {
  const stop = opts.stopAt ?? (() => false);
  // order nodes so each runs after every node that feeds it a gradient
  const order: Node[] = [];
  const seen = new Set<Node>([start]);
  const stack: [Node, number][] = [[start, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, k] = top;
    if (k < node.inputs.length) {
      top[1]++;
      const input = node.inputs[k];
      const next = input && !stop(input) ? node.next[k] : null;
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  const grads = new Map<Node, Tensor>([[start, seed]]);
  for (let n = order.length - 1; n >= 0; n--) {
    const node = order[n];
    const g = grads.get(node);
    grads.delete(node);
    if (!g) continue;
    const inputGrads = node.apply(g);
    node.inputs.forEach((input, k) => {
      const gi = inputGrads[k];
      if (!input || !gi) return;
      if (!sameShape(gi.shape, input.shape)) {
        throw new Error(`internal: ${node.name} produced a gradient of shape ${fmtShape(gi.shape)} for an input of shape ${fmtShape(input.shape)}`);
      }
      const next = stop(input) ? null : node.next[k];
      if (next) {
        const prev = grads.get(next);
        grads.set(next, prev ? prev.add(gi) : gi);
      } else {
        opts.onLeaf(input, gi);
      }
    });
    if (opts.release) node.release();
  }
}

/**
 * Adds the gradients that reached each leaf into its `.grad`: in place into an existing `.grad`, as PyTorch
 * does (no new tensor per backward, nothing left to free); else `.grad` becomes a tensor of the leaf's own
 * (to change in place later). Done once the backward has finished, so no rule still reads a gradient: a
 * leaf reached by exactly one gradient that the rules made during this backward, covering its whole
 * storage and reaching no other leaf, takes it as is — no copy (a 200K-element pass per weight per
 * training step); anything else (the caller's seed, a view, a gradient shared by two leaves) is copied.
 */
function accumulate(reached: Map<Tensor, Tensor[]>, firstInternal: number): void {
  const uses = new Map<Tensor, number>();
  for (const gs of reached.values()) for (const g of gs) uses.set(g, (uses.get(g) ?? 0) + 1);
  for (const [leaf, gs] of reached) {
    let rest = gs;
    if (!leaf.grad || leaf.grad.isDisposed) {
      const g = gs[0];
      const own = gs.length === 1 && uses.get(g) === 1 && g.serial >= firstInternal && g.offset === 0 && isContiguousTensor(g) && g.numel() === g.storage.size;
      leaf.grad = keep(own ? g : g.clone());
      rest = gs.slice(1);
    }
    for (const g of rest) leaf.grad!.add_(g);
  }
}
