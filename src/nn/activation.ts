/** Activation layers: thin Modules over the functional forms. */
import { Module } from './module';
import { Tensor } from '../tensor/tensor';
import * as ops from '../ops';

/** @tsnnLayer ReLU (the tsnn transformer checks feature sizes in nn.Sequential) */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

/** @tsnnLayer GELU (the tsnn transformer checks feature sizes in nn.Sequential) */
export class GELU extends Module {
  constructor(public approximate: 'none' | 'tanh' = 'none') {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.gelu(x, this.approximate);
  }
  extraRepr(): string {
    return this.approximate === 'none' ? '' : `approximate='${this.approximate}'`;
  }
}

/** @tsnnLayer Sigmoid (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return ops.sigmoid(x);
  }
}

/** @tsnnLayer Tanh (the tsnn transformer checks feature sizes in nn.Sequential) */
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return ops.tanh(x);
  }
}

export class Softmax extends Module {
  constructor(public dim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.softmax(x, this.dim);
  }
  extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
