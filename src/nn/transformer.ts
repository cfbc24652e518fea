/** TransformerEncoderLayer (torch.nn.TransformerEncoderLayer): self-attention and a feed-forward block, each with residual and LayerNorm. */
import { Module } from './module';
import { child } from './decorators';
import { Linear } from './linear';
import { LayerNorm } from './normalization';
import { Dropout } from './dropout';
import { MultiheadAttention } from './attention';
import { ModuleList } from './containers';
import { Tensor } from '../tensor/tensor';
import * as ops from '../ops';

export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: Activation;
  layerNormEps?: number;
  batchFirst?: boolean;
  /** pre-norm (LayerNorm before each block) instead of PyTorch's default post-norm */
  normFirst?: boolean;
  bias?: boolean;
}

export interface EncoderForwardOptions {
  srcMask?: Tensor | null;
  srcKeyPaddingMask?: Tensor | null;
}

/** Masks given as an options object or positionally (src, srcMask, srcKeyPaddingMask), as in PyTorch. */
function maskArgs(
  opts: EncoderForwardOptions | Tensor | null | undefined,
  kpm?: Tensor | null,
): { srcMask: Tensor | null; srcKeyPaddingMask: Tensor | null } {
  if (opts instanceof Tensor || opts === null || opts === undefined) return { srcMask: opts ?? null, srcKeyPaddingMask: kpm ?? null };
  return { srcMask: opts.srcMask ?? null, srcKeyPaddingMask: opts.srcKeyPaddingMask ?? kpm ?? null };
}

export class TransformerEncoderLayer extends Module {
  @child self_attn!: MultiheadAttention;
  @child linear1!: Linear;
  @child dropout!: Dropout;
  @child linear2!: Linear;
  @child norm1!: LayerNorm;
  @child norm2!: LayerNorm;
  @child dropout1!: Dropout;
  @child dropout2!: Dropout;
  readonly normFirst: boolean;
  readonly activation: Activation;
  /** the options it was made with (TransformerEncoder makes its copies from them) */
  readonly options: TransformerEncoderLayerOptions;

  /** `new TransformerEncoderLayer(512, 8, { dimFeedforward, dropout, activation, batchFirst, normFirst })`, or with dimFeedforward as the third argument */
  constructor(
    public readonly dModel: number,
    public readonly nhead: number,
    options: TransformerEncoderLayerOptions | number = {},
  ) {
    super();
    const opts: TransformerEncoderLayerOptions = typeof options === 'number' ? { dimFeedforward: options } : { ...options };
    this.options = opts;
    const p = opts.dropout ?? 0.1;
    const dff = opts.dimFeedforward ?? 2048;
    const eps = opts.layerNormEps ?? 1e-5;
    const bias = opts.bias ?? true;
    const act = opts.activation ?? 'relu';
    if (act !== 'relu' && act !== 'gelu' && typeof act !== 'function') {
      throw new Error(`TransformerEncoderLayer: activation should be 'relu', 'gelu' or a function, not '${act}'`);
    }
    this.activation = act;
    this.normFirst = opts.normFirst ?? false;
    this.self_attn = new MultiheadAttention(dModel, nhead, { dropout: p, bias, batchFirst: opts.batchFirst ?? false });
    this.linear1 = new Linear(dModel, dff, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(dff, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps });
    this.norm2 = new LayerNorm(dModel, { eps });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
  }

  get batchFirst(): boolean {
    return this.self_attn.batchFirst;
  }

  private act(x: Tensor): Tensor {
    const a = this.activation;
    return a === 'relu' ? ops.relu(x) : a === 'gelu' ? ops.gelu(x) : a(x);
  }

  private saBlock(x: Tensor, attnMask: Tensor | null, keyPaddingMask: Tensor | null): Tensor {
    const [y] = this.self_attn(x, x, x, { attnMask, keyPaddingMask, needWeights: false });
    return this.dropout1(y);
  }

  private ffBlock(x: Tensor): Tensor {
    return this.dropout2(this.linear2(this.dropout(this.act(this.linear1(x)))));
  }

  /**
   * src [S, N, E] ([N, S, E] with batchFirst, [S, E] unbatched). `srcMask` is an additive [S, S] (or
   * [N * nhead, S, S]) mask, `srcKeyPaddingMask` [N, S] marks padding with nonzero entries.
   */
  forward(src: Tensor, opts: EncoderForwardOptions | Tensor | null = {}, srcKeyPaddingMask?: Tensor | null): Tensor {
    if (!(src instanceof Tensor)) this.fail(`expected a Tensor input, got ${src === null ? 'null' : typeof src}`);
    const { srcMask: mask, srcKeyPaddingMask: kpm } = maskArgs(opts, srcKeyPaddingMask);
    let x = src;
    if (this.normFirst) {
      x = ops.add(x, this.saBlock(this.norm1(x), mask, kpm));
      x = ops.add(x, this.ffBlock(this.norm2(x)));
    } else {
      x = this.norm1(ops.add(x, this.saBlock(x, mask, kpm)));
      x = this.norm2(ops.add(x, this.ffBlock(x)));
    }
    return x;
  }
}

/**
 * A stack of `numLayers` copies of `encoderLayer` (same options and initial weights, as PyTorch's deepcopy),
 * under the keys `layers.0.*`, `layers.1.*`, ..., then an optional final `norm`.
 */
export class TransformerEncoder extends Module {
  @child layers!: ModuleList<TransformerEncoderLayer>;
  @child norm!: Module | null;

  constructor(
    encoderLayer: TransformerEncoderLayer,
    public readonly numLayers: number,
    opts: { norm?: Module | null } = {},
  ) {
    super();
    if (!(encoderLayer instanceof TransformerEncoderLayer)) throw new Error('TransformerEncoder: encoderLayer must be a TransformerEncoderLayer');
    if (!Number.isInteger(numLayers) || numLayers < 1) throw new Error(`TransformerEncoder: numLayers must be a positive integer, got ${numLayers}`);
    const sd = encoderLayer.stateDict();
    const copies = Array.from({ length: numLayers }, () => {
      const l = new TransformerEncoderLayer(encoderLayer.dModel, encoderLayer.nhead, encoderLayer.options);
      l.to(encoderLayer.self_attn.out_proj.weight.device);
      l.loadStateDict(sd);
      l.train(encoderLayer.training);
      return l;
    });
    this.layers = new ModuleList(copies);
    this.norm = opts.norm ?? null;
  }

  forward(src: Tensor, opts: EncoderForwardOptions | Tensor | null = {}, srcKeyPaddingMask?: Tensor | null): Tensor {
    const masks = maskArgs(opts, srcKeyPaddingMask);
    let x = src;
    for (const layer of this.layers) x = layer(x, masks);
    return this.norm ? this.norm(x) : x;
  }
}
