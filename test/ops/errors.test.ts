/** Bad input gives clear errors that name the op and the shapes (or the offending value). */
import { expect } from 'chai';
import { ops, tensor, Tensor } from '../../src';
import { testDevices } from '../helpers';
import { throwsWith } from './util';

describe('ops: errors', () => {
  const devices = testDevices();
  for (const device of devices) {
    describe(device, () => {
      it('broadcast mismatch names the op and both shapes', () => {
        const a = tensor(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          { device },
        );
        const b = tensor([1, 2, 3, 4], { device });
        throwsWith(() => a.add(b), /^add:/, '[2, 3]', '[4]', 'broadcast');
        throwsWith(() => a.mul(b), /^mul:/, '[2, 3]', '[4]');
        throwsWith(() => a.maximum(b), /^maximum:/, '[2, 3]', '[4]');
        for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const) throwsWith(() => a[op](b), new RegExp(`^${op}:`), '[2, 3]', '[4]');
        throwsWith(() => ops.where(a.gt(0), a, b), /^where:/, '[4]');
        throwsWith(() => a.add_(b), 'add_', '[2, 3]', '[4]');
      });
      it('matmul mismatch names matmul, both shapes and the inner sizes', () => {
        const a = tensor(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          { device },
        );
        throwsWith(() => a.matmul(a), /^matmul:/, '[2, 3]', '2x3 and 2x3');
      });
      it('non-tensor operands', () => {
        const a = tensor([1], { device });
        throwsWith(() => a.add('1' as unknown as number), /^add:/, 'string');
        throwsWith(() => a.mul(null as unknown as number), /^mul:/, 'null');
        throwsWith(() => ops.add(1, 2), /^add:/, 'at least one operand must be a Tensor');
      });
      it('item() on a multi-element tensor; item({ nanCheck }) on NaN/Infinity', () => {
        throwsWith(() => tensor([1, 2], { device }).item(), 'item()', '[2]', '2 elements');
        expect(tensor([[7]], { device }).item()).to.equal(7);
        expect(Number.isNaN(tensor([NaN], { device }).item())).to.equal(true);
        throwsWith(() => tensor([NaN], { device }).item({ nanCheck: true }), 'item()', 'NaN');
        throwsWith(() => tensor([1], { device }).div(0).item({ nanCheck: true }), 'item()', 'Infinity');
        expect(tensor([1.5], { device }).item({ nanCheck: true })).to.equal(1.5);
      });
      it('using a disposed tensor', () => {
        const a = tensor([1, 2], { device });
        a.dispose();
        throwsWith(() => a.add(1), 'dispose');
        throwsWith(() => a.toArray(), 'disposed', '[2]');
      });
    });
  }

  it('device mismatch names the op, shapes and devices', function () {
    if (devices.length < 2) this.skip();
    const [d0, d1] = devices;
    const a = tensor([1, 2], { device: d0 });
    const b = tensor([3, 4], { device: d1 });
    throwsWith(() => a.add(b), /^add:/, `[2] on '${d0}'`, `[2] on '${d1}'`, '.to(');
    throwsWith(() => a.reshape(1, 2).matmul(b.reshape(2, 1)), /^matmul:/, d0, d1);
    throwsWith(() => ops.cat([a, b]), /^cat:/, d0, d1);
    throwsWith(() => ops.where(a.gt(0), a, b), /^where:/, d1);
    throwsWith(() => a.indexSelect(0, tensor([0], { device: d1 })), /^indexSelect:/, d1);
    throwsWith(() => a.add_(b), d0, d1);
  });

  describe('tensor() input validation', () => {
    it('ragged nested arrays name the offending path and shapes', () => {
      throwsWith(() => tensor([[1, 2], [3]]), 'tensor', 'ragged', 'data[1]', '[1]', '[2]');
      throwsWith(
        () =>
          tensor([
            [[1], [2]],
            [[3], [4, 5]],
          ]),
        'tensor',
        'ragged',
        'data[1][1]',
      );
      throwsWith(() => tensor([1, [2]] as unknown as number[]), 'tensor', 'ragged', 'data[1]');
    });
    it('non-numbers name what was found and where', () => {
      throwsWith(() => tensor([1, 'a'] as unknown as number[]), 'tensor', 'string', 'data[1]');
      throwsWith(
        () =>
          tensor([
            [1, 2],
            [3, null],
          ] as unknown as number[][]),
        'tensor',
        'null',
        'data[1][1]',
      );
      throwsWith(() => tensor([1, undefined] as unknown as number[]), 'tensor', 'undefined', 'data[1]');
      throwsWith(() => tensor({ a: 1 } as unknown as number[]), 'tensor', 'object');
      throwsWith(() => tensor([1, 2, 3], { shape: [2, 2] }), 'tensor', '3 values', '[2, 2]');
    });
    it('accepts numbers, booleans, typed arrays, nested and empty arrays', () => {
      expect(tensor(3).shape).to.deep.equal([]);
      expect(tensor([]).shape).to.deep.equal([0]);
      expect(tensor([[true, false]] as unknown as number[][]).toArray()).to.deep.equal([[1, 0]]);
      expect(tensor(new Float64Array([1, 2])).toArray()).to.deep.equal([1, 2]);
      expect(tensor([new Float32Array([1, 2]), new Float32Array([3, 4])] as unknown as number[][]).shape).to.deep.equal([2, 2]);
    });
    it('bad shapes and devices for creation functions', () => {
      throwsWith(() => ops.reshape(tensor([1, 2]), [3]), 'reshape', '[2]', '[3]');
      throwsWith(() => tensor([1], { device: 'tpu' as never }), "unknown device 'tpu'");
    });
  });
});

export type _unused = Tensor;
