/** MultiheadAttention (torch.nn.MultiheadAttention): scaled dot-product attention over several heads. */
import { Module } from './module';
import { child } from './decorators';
import { Linear } from './linear';
import { Tensor } from '../tensor/tensor';
import { fmtShape, sameShape } from '../tensor/shape';
import { full } from '../tensor/creation';
import { mapKernel } from '../ops/kernel';
import { empty } from './empty';
import { constant_, xavierUniform_, normal_ } from './init';
import { dropout } from './dropout';
import * as ops from '../ops';

export interface AttentionForwardOptions {
  /**
   * [N, S] (or [S] unbatched): keys to ignore. Nonzero entries (1.0, as comparisons produce) mark padding,
   * like PyTorch's boolean masks.
   */
  keyPaddingMask?: Tensor | null;
  /** return the attention weights as the second result (default true) */
  needWeights?: boolean;
  /**
   * [L, S] or [N * numHeads, L, S], added to the attention scores (use -Infinity to forbid a position), like
   * PyTorch's float masks; see generateSquareSubsequentMask.
   */
  attnMask?: Tensor | null;
  /** average the returned weights over heads ([N, L, S]) rather than per head ([N, numHeads, L, S]); default true */
  averageAttnWeights?: boolean;
}

/** The causal mask for a sequence of `size`: 0 on and below the diagonal, -Infinity above (nn.Transformer.generate_square_subsequent_mask). */
export function generateSquareSubsequentMask(size: number, device?: Tensor['device']): Tensor {
  const base = full([size, size], 0, { device });
  const mask = mapKernel('causal_mask', [base, -Infinity], ([, ninf], kb) => {
    const [i, j] = kb.outIndex();
    return `(${j} > ${i} ? ${ninf} : 0.0)`;
  });
  base.dispose();
  return mask;
}

/** The additive form of a 0/1 padding mask: -Infinity where it is nonzero. */
function paddingToAdditive(mask: Tensor): Tensor {
  return mapKernel('key_padding_mask', [mask, -Infinity], ([m, ninf]) => `(${m} != 0.0 ? ${ninf} : 0.0)`);
}

export class MultiheadAttention extends Module {
  in_proj_weight!: Tensor | null;
  q_proj_weight!: Tensor | null;
  k_proj_weight!: Tensor | null;
  v_proj_weight!: Tensor | null;
  in_proj_bias!: Tensor | null;
  bias_k!: Tensor | null;
  bias_v!: Tensor | null;
  @child out_proj!: Linear;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;
  readonly addZeroAttn: boolean;

  constructor(
    public readonly embedDim: number,
    public readonly numHeads: number,
    opts: { dropout?: number; bias?: boolean; addBiasKv?: boolean; addZeroAttn?: boolean; kdim?: number; vdim?: number; batchFirst?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(embedDim) || embedDim < 1 || !Number.isInteger(numHeads) || numHeads < 1) {
      throw new Error(`MultiheadAttention: embedDim and numHeads must be positive integers, got ${embedDim} and ${numHeads}`);
    }
    if (embedDim % numHeads !== 0) throw new Error(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    this.headDim = embedDim / numHeads;
    this.kdim = opts.kdim ?? embedDim;
    this.vdim = opts.vdim ?? embedDim;
    this.dropout = opts.dropout ?? 0;
    this.batchFirst = opts.batchFirst ?? false;
    this.addZeroAttn = opts.addZeroAttn ?? false;
    const sameDims = this.kdim === embedDim && this.vdim === embedDim;
    const bias = opts.bias ?? true;
    // registration order as PyTorch's, so stateDict() lists keys in the same order
    this.registerParameter('in_proj_weight', sameDims ? empty([3 * embedDim, embedDim]) : null);
    this.registerParameter('q_proj_weight', sameDims ? null : empty([embedDim, embedDim]));
    this.registerParameter('k_proj_weight', sameDims ? null : empty([embedDim, this.kdim]));
    this.registerParameter('v_proj_weight', sameDims ? null : empty([embedDim, this.vdim]));
    this.registerParameter('in_proj_bias', bias ? empty([3 * embedDim]) : null);
    this.out_proj = new Linear(embedDim, embedDim, { bias });
    this.registerParameter('bias_k', opts.addBiasKv ? empty([1, 1, embedDim]) : null);
    this.registerParameter('bias_v', opts.addBiasKv ? empty([1, 1, embedDim]) : null);
    this.resetParameters();
  }

  /** PyTorch's _reset_parameters: xavier-uniform projections, zero biases, xavier-normal bias_k/v. */
  resetParameters(): void {
    if (this.in_proj_weight) xavierUniform_(this.in_proj_weight);
    for (const w of [this.q_proj_weight, this.k_proj_weight, this.v_proj_weight]) if (w) xavierUniform_(w);
    if (this.in_proj_bias) {
      constant_(this.in_proj_bias, 0);
      if (this.out_proj.bias) constant_(this.out_proj.bias, 0);
    }
    for (const b of [this.bias_k, this.bias_v]) {
      if (b) normal_(b, 0, Math.sqrt(2 / (1 + this.embedDim)));
    }
  }

  private projections(): [Tensor, Tensor, Tensor] {
    const E = this.embedDim;
    if (this.in_proj_weight) {
      const w = this.in_proj_weight;
      return [ops.slice(w, 0, 0, E), ops.slice(w, 0, E, 2 * E), ops.slice(w, 0, 2 * E, 3 * E)];
    }
    return [this.q_proj_weight!, this.k_proj_weight!, this.v_proj_weight!];
  }

  private biases(): [Tensor | null, Tensor | null, Tensor | null] {
    const b = this.in_proj_bias;
    const E = this.embedDim;
    if (!b) return [null, null, null];
    return [ops.slice(b, 0, 0, E), ops.slice(b, 0, E, 2 * E), ops.slice(b, 0, 2 * E, 3 * E)];
  }

  /**
   * query [L, N, E] ([N, L, E] with batchFirst, [L, E] unbatched), key [S, N, kdim], value [S, N, vdim].
   * Returns [output shaped like query, attention weights or null].
   */
  forward(query: Tensor, key: Tensor, value: Tensor, opts: AttentionForwardOptions = {}): [Tensor, Tensor | null] {
    for (const [what, t] of [
      ['query', query],
      ['key', key],
      ['value', value],
    ] as const) {
      if (!(t instanceof Tensor)) this.fail(`expected ${what} to be a Tensor, got ${t === null ? 'null' : typeof t}`);
    }
    const E = this.embedDim;
    const H = this.numHeads;
    const hd = this.headDim;
    const batched = query.ndim === 3;
    if (query.ndim !== 2 && query.ndim !== 3) this.fail(`expected query to be 2D (unbatched) or 3D (batched), got ${fmtShape(query.shape)}`);
    if (key.ndim !== query.ndim || value.ndim !== query.ndim) {
      this.fail(`query ${fmtShape(query.shape)}, key ${fmtShape(key.shape)} and value ${fmtShape(value.shape)} must all be ${query.ndim}D`);
    }
    const layout = batched ? (this.batchFirst ? '[N, L, E]' : '[L, N, E]') : '[L, E]';
    this.expectDim(query, -1, E, `query ${layout} with E = ${E}`);
    this.expectDim(key, -1, this.kdim, `key with last dim ${this.kdim}`);
    this.expectDim(value, -1, this.vdim, `value with last dim ${this.vdim}`);
    // everything below runs batch-first: [N, L, E]
    const toBF = (t: Tensor) => (!batched ? ops.unsqueeze(t, 0) : this.batchFirst ? t : ops.transpose(t, 0, 1));
    const q0 = toBF(query);
    const k0 = toBF(key);
    const v0 = toBF(value);
    const [N, L] = q0.shape;
    let S = k0.shape[1];
    if (k0.shape[0] !== N || v0.shape[0] !== N)
      this.fail(`query, key and value must have the same batch size, got ${fmtShape(query.shape)}, ${fmtShape(key.shape)}, ${fmtShape(value.shape)}`);
    if (v0.shape[1] !== S) this.fail(`key ${fmtShape(key.shape)} and value ${fmtShape(value.shape)} must have the same sequence length`);

    // masks as additive [N or 1, H or 1, L, S]
    let mask: Tensor | null = null;
    const attnMask = opts.attnMask ?? null;
    if (attnMask) {
      if (!(attnMask instanceof Tensor)) this.fail('attnMask must be a Tensor');
      if (attnMask.ndim === 2) {
        if (!sameShape(attnMask.shape, [L, S]))
          this.fail(`the shape of the 2D attnMask is ${fmtShape(attnMask.shape)}, but should be ${fmtShape([L, S])}`);
        mask = ops.reshape(attnMask, [1, 1, L, S]);
      } else if (attnMask.ndim === 3) {
        if (!sameShape(attnMask.shape, [N * H, L, S]))
          this.fail(`the shape of the 3D attnMask is ${fmtShape(attnMask.shape)}, but should be ${fmtShape([N * H, L, S])}`);
        mask = ops.reshape(attnMask, [N, H, L, S]);
      } else {
        this.fail(`attnMask must be 2D or 3D, got ${fmtShape(attnMask.shape)}`);
      }
    }
    let kpm = opts.keyPaddingMask ?? null;
    if (kpm) {
      if (!(kpm instanceof Tensor)) this.fail('keyPaddingMask must be a Tensor');
      const want = batched ? [N, S] : [S];
      if (!sameShape(kpm.shape, want)) this.fail(`expected keyPaddingMask of shape ${fmtShape(want)}, got ${fmtShape(kpm.shape)}`);
      kpm = ops.reshape(kpm, [N, S]);
    }

    const [wq, wk, wv] = this.projections();
    const [bq, bk, bv] = this.biases();
    const proj = (x: Tensor, w: Tensor, b: Tensor | null) => {
      const y = ops.matmul(x, ops.transpose(w, 0, 1));
      return b ? ops.add(y, b) : y;
    };
    const q = proj(q0, wq, bq);
    let k = proj(k0, wk, bk);
    let v = proj(v0, wv, bv);
    const padKeys = (extra: Tensor | number) => {
      // one more key position: extend the masks with a column that lets it through
      S += 1;
      if (mask) mask = ops.cat([mask, ops.zerosLike(ops.slice(mask, 3, 0, 1))], 3);
      if (kpm) kpm = ops.cat([kpm, ops.zerosLike(ops.slice(kpm, 1, 0, 1))], 1);
      void extra;
    };
    if (this.bias_k && this.bias_v) {
      k = ops.cat([k, ops.expand(this.bias_k, [N, 1, E])], 1);
      v = ops.cat([v, ops.expand(this.bias_v, [N, 1, E])], 1);
      padKeys(0);
    }
    // heads: [N, S, E] -> [N, H, S, hd]
    const heads = (t: Tensor) => ops.permute(ops.reshape(t, [N, t.shape[1], H, hd]), [0, 2, 1, 3]);
    const qh = heads(q);
    let kh = heads(k);
    let vh = heads(v);
    if (this.addZeroAttn) {
      kh = ops.cat([kh, ops.zerosLike(ops.slice(kh, 2, 0, 1))], 2);
      vh = ops.cat([vh, ops.zerosLike(ops.slice(vh, 2, 0, 1))], 2);
      padKeys(0);
    }
    let scores = ops.matmul(ops.mul(qh, 1 / Math.sqrt(hd)), ops.transpose(kh, 2, 3));
    if (mask) scores = ops.add(scores, mask);
    if (kpm) scores = ops.add(scores, ops.reshape(paddingToAdditive(kpm), [N, 1, 1, S]));
    let attn = ops.softmax(scores, -1);
    // PyTorch returns the weights after dropout
    if (this.dropout > 0 && this.training) attn = dropout(attn, this.dropout, true);
    const weights = attn;
    const ctx = ops.reshape(ops.permute(ops.matmul(attn, vh), [0, 2, 1, 3]), [N, L, E]);
    let out = this.out_proj(ctx);
    out = !batched ? ops.squeeze(out, 0) : this.batchFirst ? out : ops.transpose(out, 0, 1);
    if (opts.needWeights === false) return [out, null];
    let w = opts.averageAttnWeights === false ? weights : ops.mean(weights, 1);
    if (!batched) w = ops.squeeze(w, 0);
    return [out, w];
  }

  extraRepr(): string {
    return '';
  }
}
