/** The Transformer sample's model: token embedding + learned positions, a TransformerEncoder, a per-token head. */
import { nn, Tensor, child, param, randn } from '../../src';

export const VOCAB = 10;

export class ReverseModel extends nn.Module {
  @child embed: nn.Embedding;
  @param pos: Tensor;
  @child encoder: nn.TransformerEncoder;
  @child head: nn.Linear;

  constructor(
    readonly seqLen: number,
    dModel = 32,
  ) {
    super();
    this.embed = new nn.Embedding(VOCAB, dModel);
    this.pos = randn([seqLen, dModel]).mul(0.1);
    const layer = new nn.TransformerEncoderLayer(dModel, 4, { dimFeedforward: 64, dropout: 0, batchFirst: true });
    this.encoder = new nn.TransformerEncoder(layer, 2);
    this.head = new nn.Linear(dModel, VOCAB);
  }

  forward(tokens: Tensor): Tensor {
    return this.head(this.encoder(this.embed(tokens).add(this.pos)));
  }
}
