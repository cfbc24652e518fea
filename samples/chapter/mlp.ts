/** d2l "Layers and Modules": a hand-written MLP with two @child layers. Run: npm run sample:mlp */
import { manualSeed, rand } from '../../src';
import { MLP, parameterTable } from './models';

manualSeed(0);
const net = new MLP();
const X = rand([2, 20]);
const y = net(X);
console.log('output shape:', y.shape);
console.log(parameterTable(net));
console.log(net.toString());
