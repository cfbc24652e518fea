/**
 * d2l "Layers and Modules" (samples/chapter/models.ts) against PyTorch: the same models built in PyTorch
 * by test/fixtures/gen_chapter.py. Ours are lazy, so one forward materialises them; then PyTorch's
 * weights are loaded with loadStateDict and outputs, parameter gradients and the input gradient of
 * out.sum() must agree within 1e-4.
 */
import { expect } from 'chai';
import { tensor, Tensor, NestedArray, setDefaultDevice, getDefaultDevice, DeviceName } from '../../src';
import { fixture, testDevices, expectClose } from '../helpers';
import { CHAPTER_MODELS } from '../../samples/chapter/models';

interface Ref {
  stateDict: Record<string, NestedArray>;
  parameterNames: string[];
  bufferNames: string[];
  outputShape: number[];
  output: NestedArray;
  grads: Record<string, NestedArray>;
  inputGrad: NestedArray;
  repr: string;
}

const ref = fixture<{ input: NestedArray; models: Record<string, Ref> }>('chapter.json');

const builders = CHAPTER_MODELS;

/** PyTorch's repr with tsnn's spelling of the Linear configuration. */
function tsnnRepr(torchRepr: string): string {
  return torchRepr
    .replace(/in_features=/g, 'inFeatures=')
    .replace(/out_features=/g, 'outFeatures=')
    .replace(/bias=True/g, 'bias=true')
    .replace(/bias=False/g, 'bias=false');
}

for (const device of testDevices()) {
  describe(`d2l Layers and Modules vs PyTorch (${device})`, () => {
    let saved: DeviceName;
    before(() => {
      saved = getDefaultDevice();
      setDefaultDevice(device);
    });
    after(() => void setDefaultDevice(saved));

    for (const [name, build] of Object.entries(builders)) {
      const r = ref.models[name];
      it(`${name}: names, output and every gradient match PyTorch`, () => {
        const net = build();
        const X0 = tensor(ref.input, { device });
        // lazy layers learn their input sizes
        net(X0);
        expect(net.namedParameters().map(([k]) => k)).to.deep.equal(r.parameterNames);
        expect(net.namedBuffers().map(([k]) => k)).to.deep.equal(r.bufferNames);
        expect(Object.keys(net.stateDict())).to.deep.equal(Object.keys(r.stateDict));

        const sd: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(r.stateDict)) sd[k] = tensor(v, { device });
        expect(net.loadStateDict(sd)).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
        for (const [k, v] of Object.entries(net.stateDict())) expectClose(v, tensor(r.stateDict[k]).dataSync(), 0, 0, `loaded ${k}`);

        const X = tensor(ref.input, { device, requiresGrad: true });
        const y = net(X) as Tensor;
        expect(y.shape).to.deep.equal(r.outputShape);
        expect(y.device).to.equal(device);
        expectClose(y, r.output, 1e-4, 1e-4, `${name} output`);
        y.sum().backward();
        for (const [k, p] of net.namedParameters()) {
          expect(p.grad, `${k}.grad`).to.not.equal(null);
          expectClose(p.grad!, r.grads[k], 1e-4, 1e-4, `${name} grad of ${k}`);
        }
        expectClose(X.grad!, r.inputGrad, 1e-4, 1e-4, `${name} grad of the input`);
        expect(net.toString()).to.equal(tsnnRepr(r.repr));
      });
    }
  });
}
