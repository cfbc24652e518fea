/** Embedding (torch.nn.Embedding / F.embedding): a lookup table of vectors indexed by integer ids. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import { fmtShape } from '../tensor/shape';
import { empty } from './empty';
import { arange } from '../tensor/creation';
import { normal_ } from './init';
import { noGrad } from '../autograd/grad-mode';
import * as ops from '../ops';
import { checkIndexValues, nonInteger } from '../ops/validate';

/** Ids are range-checked here (where that is free, see ops/validate.ts) so the error names the embedding. */
function checkIds(op: string, input: Tensor, num: number): void {
  checkIndexValues(
    input,
    (v) =>
      nonInteger(op, 'indices', v) ??
      (v < 0 || v >= num ? `${op}: index ${v} is out of range for ${num} embeddings (indices are integers in [0, ${num}))` : null),
  );
}

/**
 * Rows of `weight` [num, dim] at the integer ids in `input` (any shape): the result is [...input.shape, dim].
 * The row at `paddingIdx` (if given) receives no gradient, as in PyTorch.
 */
export function embedding(input: Tensor, weight: Tensor, paddingIdx?: number | null): Tensor {
  if (!(input instanceof Tensor)) throw new Error(`embedding: input must be a Tensor of integer ids, got ${input === null ? 'null' : typeof input}`);
  if (!(weight instanceof Tensor) || weight.ndim !== 2)
    throw new Error(`embedding: weight must be a 2-D Tensor [num, dim], got ${weight instanceof Tensor ? fmtShape(weight.shape) : typeof weight}`);
  const [num, dim] = weight.shape;
  checkIds('embedding', input, num);
  const flat = ops.reshape(input, [input.numel()]);
  let rows = ops.indexSelect(weight, 0, flat);
  if (paddingIdx !== null && paddingIdx !== undefined && rows.requiresGrad) {
    const pad = paddingIdx < 0 ? paddingIdx + num : paddingIdx;
    // same values; the gradient only flows through rows whose id is not the padding id
    rows = ops.where(ops.unsqueeze(ops.ne(flat, pad), 1), rows, rows.detach());
  }
  return ops.reshape(rows, [...input.shape, dim]);
}

export class Embedding extends Module {
  weight!: Tensor;
  paddingIdx: number | null;

  constructor(
    public numEmbeddings: number,
    public embeddingDim: number,
    opts: { paddingIdx?: number | null; weight?: Tensor } = {},
  ) {
    super();
    if (!Number.isInteger(numEmbeddings) || numEmbeddings < 1 || !Number.isInteger(embeddingDim) || embeddingDim < 1) {
      throw new Error(`Embedding: numEmbeddings and embeddingDim must be positive integers, got ${numEmbeddings} and ${embeddingDim}`);
    }
    let pad = opts.paddingIdx ?? null;
    if (pad !== null) {
      if (!Number.isInteger(pad) || pad >= numEmbeddings || pad < -numEmbeddings)
        throw new Error(`Embedding: paddingIdx ${pad} must be within the number of embeddings (${numEmbeddings})`);
      if (pad < 0) pad += numEmbeddings;
    }
    this.paddingIdx = pad;
    if (opts.weight) {
      if (
        !(opts.weight instanceof Tensor) ||
        opts.weight.ndim !== 2 ||
        opts.weight.shape[0] !== numEmbeddings ||
        opts.weight.shape[1] !== embeddingDim
      ) {
        throw new Error(`Embedding: weight must have shape [${numEmbeddings}, ${embeddingDim}]`);
      }
      this.registerParameter('weight', opts.weight);
    } else {
      this.registerParameter('weight', empty([numEmbeddings, embeddingDim]));
      this.resetParameters();
    }
  }

  /** An Embedding holding `embeddings` [num, dim]; frozen (no gradient) unless `freeze: false`. */
  static fromPretrained(embeddings: Tensor, opts: { freeze?: boolean; paddingIdx?: number | null } = {}): Embedding {
    if (!(embeddings instanceof Tensor) || embeddings.ndim !== 2) throw new Error('Embedding.fromPretrained: embeddings must be a 2-D Tensor');
    const e = new Embedding(embeddings.shape[0], embeddings.shape[1], { paddingIdx: opts.paddingIdx, weight: noGrad(() => embeddings.clone()) });
    e.weight.requiresGrad = !(opts.freeze ?? true);
    return e;
  }

  resetParameters(): void {
    normal_(this.weight);
    if (this.paddingIdx !== null) {
      const row = this.paddingIdx;
      noGrad(() =>
        this.weight.copy_(ops.mul(this.weight, ops.unsqueeze(ops.ne(arange(0, this.weight.shape[0], 1, { device: this.weight.device }), row), 1))),
      );
    }
  }

  forward(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) this.fail(`expected a Tensor of integer ids, got ${input === null ? 'null' : typeof input}`);
    try {
      return embedding(input, this.weight, this.paddingIdx);
    } catch (e) {
      this.fail((e as Error).message.replace(/^embedding: /, ''));
    }
  }

  extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, paddingIdx=${this.paddingIdx}` : ''}`;
  }
}
