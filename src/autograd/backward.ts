/** The backward pass: topological order over the tape, gradient accumulation into leaves' `.grad`. */
import { storageSerial, type Storage } from '../tensor/storage';
import type { Node, TapeTensor } from './node';
import { noGrad } from './grad-mode';
import { fmtShape, sameShape } from '../tensor/shape';
import { keep, scoped, tidy } from '../tensor/scope';

/**
 * What the backward pass needs of a tensor `T` (Tensor has it): generic over the tensor type, so autograd does
 * not import tensor.ts, which imports it.
 */
export interface GradTensor<T> extends TapeTensor {
  readonly storage: Storage;
  readonly offset: number;
  readonly isContiguous: boolean;
  readonly isDisposed: boolean;
  grad: T | null;
  numel(): number;
  clone(): T;
  add(other: T): T;
  add_(other: T): unknown;
  dispose(): void;
}

export interface BackwardOptions {
  retainGraph?: boolean;
}

export function backward<Tensor extends GradTensor<Tensor>>(root: Tensor, grad: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error('backward: tensor does not require grad and has no gradFn');
  if (!sameShape(grad.shape, root.shape)) {
    throw new Error(`backward: gradient of shape ${fmtShape(grad.shape)} does not match the tensor's shape ${fmtShape(root.shape)}`);
  }
  const firstStorage = storageSerial();
  const reached = new Map<Tensor, Tensor[]>(); // leaf -> the gradients that reached it, in order
  const onLeaf = (leaf: Tensor, g: Tensor) => {
    const list = reached.get(leaf);
    if (list) list.push(g);
    else reached.set(leaf, [g]);
  };
  // Every tensor made in here is autograd's own (the gradients between nodes, the rules' temporaries, the
  // gradients that reached a leaf but were added into its `.grad`) except the `.grad`s, which accumulate
  // keep()s: freed at the end, so device memory does not wait for the collector (or, on GL, for finalizers).
  tidy(() =>
    noGrad(() => {
      if (!root.gradFn) onLeaf(root, grad);
      else propagate(root.gradFn, grad, { onLeaf, release: !opts.retainGraph, freeGradients: true });
      accumulate(reached, firstStorage);
    }),
  );
}

export interface PropagateOptions<Tensor> {
  /** inputs where propagation stops and their gradient is handed to onLeaf (default: tensors with no node) */
  stopAt?: (t: Tensor) => boolean;
  /** receives each gradient that reaches a leaf (or a stopAt tensor); called once per edge */
  onLeaf: (t: Tensor, grad: Tensor) => void;
  /** free each node's saved values once it has run */
  release?: boolean;
  /**
   * Free each gradient this propagation made as soon as nothing reads it any more (summed into another,
   * or passed to the node it flows into, which has run), and each rule's temporaries once the rule
   * returns. Gradients handed to onLeaf are the receiver's. Off while a graph is captured.
   */
  freeGradients?: boolean;
}

/**
 * Runs the gradient rules from `start` (whose output gradient is `seed`) in reverse topological order,
 * summing the gradients that reach a node before it runs. Shared by backward() and nn.compile's capture.
 */
export function propagate<Tensor extends GradTensor<Tensor>>(start: Node<Tensor>, seed: Tensor, opts: PropagateOptions<Tensor>): void {
  const stop = opts.stopAt ?? (() => false);
  // order nodes so each runs after every node that feeds it a gradient
  const order: Node<Tensor>[] = [];
  const seen = new Set<Node<Tensor>>([start]);
  const stack: [Node<Tensor>, number][] = [[start, 0]];
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
  const grads = new Map<Node<Tensor>, Tensor>([[start, seed]]);
  const free = opts.freeGradients ?? false;
  // gradients made here, with how many entries of `grads` hold each (0: none yet, or no longer)
  const holds = new Map<Tensor, number>();
  const handedOut = new Set<Tensor>();
  const unhold = (t: Tensor) => {
    const n = holds.get(t);
    if (n !== undefined && n > 0) holds.set(t, n - 1);
  };
  for (let n = order.length - 1; n >= 0; n--) {
    const node = order[n];
    const g = grads.get(node);
    grads.delete(node);
    if (!g) continue;
    let inputGrads: (Tensor | null | undefined)[];
    const ended: Tensor[] = [g];
    if (free) {
      const run = scoped(() => node.apply(g));
      inputGrads = run.result;
      for (const t of run.made) {
        holds.set(t as Tensor, 0);
        ended.push(t as Tensor);
      }
      unhold(g);
    } else {
      inputGrads = node.apply(g);
    }
    node.inputs.forEach((input, k) => {
      const gi = inputGrads[k];
      if (!input || !gi) return;
      if (!sameShape(gi.shape, input.shape)) {
        throw new Error(`internal: ${node.name} produced a gradient of shape ${fmtShape(gi.shape)} for an input of shape ${fmtShape(input.shape)}`);
      }
      const next = stop(input) ? null : node.next[k];
      if (next) {
        const prev = grads.get(next);
        if (prev) {
          const sum = prev.add(gi);
          grads.set(next, sum);
          if (free) {
            holds.set(sum, 1);
            unhold(prev);
            ended.push(prev);
          }
        } else {
          grads.set(next, gi);
          if (holds.has(gi)) holds.set(gi, holds.get(gi)! + 1);
        }
      } else {
        handedOut.add(gi);
        opts.onLeaf(input, gi);
      }
    });
    if (opts.release) node.release();
    // what no entry of `grads` holds and no leaf received is read by nothing from now on
    for (const t of ended) {
      if (holds.get(t) !== 0) continue;
      holds.delete(t);
      if (!handedOut.has(t)) t.dispose();
    }
  }
}

/**
 * Adds the gradients that reached each leaf into its `.grad`: in place into an existing `.grad`, as PyTorch
 * does (no new tensor per backward, nothing left to free); else `.grad` becomes a tensor of the leaf's own.
 * Done once the backward has finished, so no rule still reads a gradient. A `.grad` is later written in
 * place (the next accumulation, zero_(), the user), and an in-place write changes its whole storage, so
 * that storage must be reachable through this `.grad` alone. A gradient is taken as is — no copy, a
 * 200K-element pass saved per weight per training step — only when its storage was made during this
 * backward (not the caller's seed, nor a value saved by the forward), it covers that storage exactly, and
 * no other gradient that reached a leaf lies in it: add hands one gradient to both inputs, and a view op's
 * rule wraps it in a new tensor, so distinct tensors share storage. (The rules' intermediate tensors may
 * still hold it, but nothing reads them after the backward.) Anything else is copied.
 */
function accumulate<Tensor extends GradTensor<Tensor>>(reached: Map<Tensor, Tensor[]>, firstStorage: number): void {
  const uses = new Map<Storage, number>();
  for (const gs of reached.values()) for (const g of gs) uses.set(g.storage, (uses.get(g.storage) ?? 0) + 1);
  const adoptable = (g: Tensor) =>
    uses.get(g.storage) === 1 && g.storage.serial >= firstStorage && g.offset === 0 && g.isContiguous && g.numel() === g.storage.size;
  for (const [leaf, gs] of reached) {
    let rest = gs;
    if (!leaf.grad || leaf.grad.isDisposed) {
      leaf.grad = keep(adoptable(gs[0]) ? gs[0] : gs[0].clone());
      rest = gs.slice(1);
    }
    for (const g of rest) leaf.grad!.add_(g);
  }
}
