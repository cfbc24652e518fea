/**
 * Layers that ONNX has as one op, exported as that op rather than as the ops their forward runs
 * (what runtimes and converters recognise): LayerNorm → LayerNormalization, BatchNorm1d/2d with
 * running statistics in eval mode → BatchNormalization.
 */
import { Tensor } from '../tensor/tensor';
import { ones, zeros } from '../tensor/creation';
import type { Module } from '../nn/module';
import { LayerNorm, BatchNorm1d, BatchNorm2d } from '../nn/normalization';
import type { LowerContext } from './lowering';

type LayerLowering = (cx: LowerContext, x: Tensor) => string;

/** How `m` exports as one ONNX op, or null when its forward's ops are exported instead. */
export function layerLowering(m: Module): LayerLowering | null {
  if (m instanceof LayerNorm) {
    return (cx, x) => {
      const k = m.normalizedShape.length;
      const scale = cx.val(m.weight ?? ones(m.normalizedShape));
      const ins = m.bias ? [cx.val(x), scale, cx.val(m.bias)] : [cx.val(x), scale];
      return cx.b.node('LayerNormalization', ins, { axis: x.ndim - k, epsilon: { float: m.eps } }, cx.scope);
    };
  }
  if ((m instanceof BatchNorm1d || m instanceof BatchNorm2d) && !m.training && m.runningMean && m.runningVar) {
    const bn = m;
    return (cx, x) => {
      const C = bn.numFeatures;
      const ins = [x, bn.weight ?? ones([C]), bn.bias ?? zeros([C]), bn.runningMean!, bn.runningVar!].map((t) => cx.val(t));
      return cx.b.node('BatchNormalization', ins, { epsilon: { float: bn.eps } }, cx.scope);
    };
  }
  return null;
}
