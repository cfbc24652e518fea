/** Adam and AdamW (torch.optim.Adam / AdamW), with amsgrad and maximize. */
import { Tensor } from '../tensor/tensor';
import { zerosLike } from '../tensor/creation';
import { mapKernel } from '../ops/kernel';
import { Optimizer, ParamGroup, Params } from './optimizer';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/**
 * PyTorch's update, per parameter p with gradient g at step t (state: step, exp_avg, exp_avg_sq,
 * max_exp_avg_sq):
 *   Adam:  g = g + weightDecay * p                 AdamW: p = p * (1 - lr * weightDecay)
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  vmax = max(vmax, v)  (amsgrad)
 *   p = p - lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
 * Step sizes and bias corrections are computed on the host and passed to the kernels as arguments.
 */
abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  constructor(params: Params<AdamOptions>, opts: Partial<AdamOptions>, defaultWeightDecay: number) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? defaultWeightDecay,
      amsgrad: opts.amsgrad ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected validate(g: ParamGroup<AdamOptions>): void {
    if (!(g.lr >= 0)) throw new Error(`${this.name}: invalid learning rate: ${g.lr}`);
    if (!(g.eps >= 0)) throw new Error(`${this.name}: invalid epsilon value: ${g.eps}`);
    if (!Array.isArray(g.betas) || g.betas.length !== 2)
      throw new Error(`${this.name}: betas must be [beta1, beta2], got ${JSON.stringify(g.betas)}`);
    g.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new Error(`${this.name}: invalid beta parameter at index ${i}: ${b}`);
    });
    if (!(g.weightDecay >= 0)) throw new Error(`${this.name}: invalid weightDecay value: ${g.weightDecay}`);
  }

  protected update(g: ParamGroup<AdamOptions>): void {
    const [b1, b2] = g.betas;
    const sign = g.maximize ? -1 : 1;
    for (const [p, grad0, s] of this.withGrads(g)) {
      const step = (typeof s.step === 'number' ? s.step : 0) + 1;
      s.step = step;
      const m0 = s.exp_avg instanceof Tensor ? s.exp_avg : this.setState(s, 'exp_avg', zerosLike(p));
      const v0 = s.exp_avg_sq instanceof Tensor ? s.exp_avg_sq : this.setState(s, 'exp_avg_sq', zerosLike(p));
      // the gradient Adam sees: sign * grad (+ wd * p for Adam's coupled weight decay)
      const wdCoupled = this.decoupled ? 0 : g.weightDecay;
      const grad =
        wdCoupled !== 0
          ? mapKernel('adam_grad', [grad0, p, sign, wdCoupled], ([gv, pv, sg, wd]) => `(${sg} * ${gv} + ${wd} * ${pv})`)
          : g.maximize
            ? mapKernel('adam_neg', [grad0], ([gv]) => `(-${gv})`)
            : grad0;
      const m = this.setState(
        s,
        'exp_avg',
        mapKernel('adam_m', [m0, grad, b1, 1 - b1], ([mv, gv, b, a]) => `(${mv} * ${b} + ${a} * ${gv})`),
      );
      let v = this.setState(
        s,
        'exp_avg_sq',
        mapKernel('adam_v', [v0, grad, b2, 1 - b2], ([vv, gv, b, a]) => `(${vv} * ${b} + ${a} * ${gv} * ${gv})`),
      );
      if (grad !== grad0) grad.dispose();
      if (g.amsgrad) {
        const prev = s.max_exp_avg_sq instanceof Tensor ? s.max_exp_avg_sq : null;
        v = this.setState(
          s,
          'max_exp_avg_sq',
          prev ? mapKernel('adam_vmax', [prev, v], ([a, b]) => `Math.max(${a}, ${b})`) : mapKernel('adam_vmax0', [v], ([b]) => `Math.max(0.0, ${b})`),
        );
      }
      const stepSize = g.lr / (1 - b1 ** step);
      const bc2Sqrt = Math.sqrt(1 - b2 ** step);
      const decay = this.decoupled ? 1 - g.lr * g.weightDecay : 1;
      this.writeParam(
        p,
        mapKernel(
          'adam_step',
          [p, m, v, decay, stepSize, bc2Sqrt, g.eps],
          ([pv, mv, vv, dc, ss, bc, eps]) => `(${pv} * ${dc} - ${ss} * ${mv} / (Math.sqrt(${vv}) / ${bc} + ${eps}))`,
        ),
      );
    }
  }
}

/** Adam: L2 weight decay added to the gradient (default weightDecay 0). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, opts, 0);
  }
}

/** AdamW: decoupled weight decay, p *= 1 - lr * weightDecay before the Adam step (default weightDecay 0.01). */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, opts, 1e-2);
  }
}
