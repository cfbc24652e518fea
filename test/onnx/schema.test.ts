/** The exporter's schema is the vendored official onnx.proto, through protobufjs. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { nn, randn, manualSeed, onnx } from '../../src';
import { repoRoot } from '../helpers';

describe('onnx schema', () => {
  it('the committed descriptor is what scripts/gen-onnx-descriptor.js makes from src/onnx/onnx.proto', () => {
    const { descriptorSource } = require(path.join(repoRoot(), 'scripts/gen-onnx-descriptor.js'));
    expect(fs.readFileSync(path.join(repoRoot(), 'src/onnx/onnx-descriptor.ts'), 'utf8')).to.equal(descriptorSource());
  });

  it('exported bytes decode with protobufjs parsing the vendored .proto text itself', () => {
    manualSeed(8);
    const bytes = onnx.exportBytes(new nn.Sequential(new nn.Linear(4, 2), new nn.Sigmoid()), [randn([3, 4])]);
    const proto = fs.readFileSync(path.join(repoRoot(), 'src/onnx/onnx.proto'), 'utf8');
    expect(proto).to.match(/Copyright \(c\) ONNX Project Contributors/);
    const Model = protobuf.parse(proto, { keepCase: true }).root.lookupType('onnx.ModelProto');
    const m = Model.toObject(Model.decode(bytes), { longs: Number }) as any;
    expect(m.ir_version).to.equal(8);
    expect(m.opset_import[0].version).to.equal(18);
    expect(m.graph.input[0].name).to.equal('input');
    expect(m.graph.input[0].type.tensor_type.shape.dim.map((d: any) => d.dim_value)).to.deep.equal([3, 4]);
    expect(m.graph.output[0].type.tensor_type.shape.dim.map((d: any) => d.dim_value)).to.deep.equal([3, 2]);
    expect(m.graph.node.map((n: any) => n.op_type)).to.deep.equal(['Transpose', 'MatMul', 'Add', 'Sigmoid']);
    expect(m.graph.node[3].output).to.deep.equal(['output']);
  });
});
