/** Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum (torch.optim.SGD). */
import { Tensor } from '../tensor/tensor';
import { mapKernel } from '../ops/kernel';
import { clone } from '../ops';
import { Optimizer, ParamGroup, Params } from './optimizer';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * PyTorch's update, per parameter p with gradient g:
 *   d = (maximize ? -g : g) + weightDecay * p
 *   buf = first step ? d : momentum * buf + (1 - dampening) * d      (when momentum != 0)
 *   d = nesterov ? d + momentum * buf : buf
 *   p -= lr * d
 * Every option enters the kernels as an argument, so changing lr between steps recompiles nothing.
 */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, opts: Partial<SGDOptions> & { lr?: number } = {}) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
      maximize: opts.maximize ?? false,
    });
  }

  protected validate(g: ParamGroup<SGDOptions>): void {
    if (!(g.lr >= 0)) throw new Error(`SGD: invalid learning rate: ${g.lr}`);
    if (!(g.momentum >= 0)) throw new Error(`SGD: invalid momentum value: ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new Error(`SGD: invalid weightDecay value: ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new Error('SGD: nesterov momentum requires a momentum and zero dampening');
  }

  protected update(g: ParamGroup<SGDOptions>): void {
    const sign = g.maximize ? -1 : 1;
    for (const [p, grad, s] of this.withGrads(g)) {
      // d = sign * grad + wd * p
      let d: Tensor =
        g.weightDecay !== 0
          ? mapKernel('sgd_decay', [grad, p, sign, g.weightDecay], ([gv, pv, sg, wd]) => `(${sg} * ${gv} + ${wd} * ${pv})`)
          : g.maximize
            ? mapKernel('sgd_neg', [grad], ([gv]) => `(-${gv})`)
            : grad;
      if (g.momentum !== 0) {
        const prev = s.momentum_buffer;
        const buf =
          prev instanceof Tensor
            ? mapKernel('sgd_momentum', [prev, d, g.momentum, 1 - g.dampening], ([b, dv, m, a]) => `(${m} * ${b} + ${a} * ${dv})`)
            : d === grad
              ? clone(d)
              : d;
        this.setState(s, 'momentum_buffer', buf);
        const next = g.nesterov ? mapKernel('sgd_nesterov', [d, buf, g.momentum], ([dv, b, m]) => `(${dv} + ${m} * ${b})`) : buf;
        if (d !== grad && d !== buf) d.dispose();
        d = next;
      }
      this.writeParam(
        p,
        mapKernel('sgd_step', [p, d, g.lr], ([pv, dv, lr]) => `(${pv} - ${lr} * ${dv})`),
      );
      if (d !== grad && d !== s.momentum_buffer) d.dispose();
    }
  }
}
