/** d2l "Layers and Modules": a Sequential of LazyLinear(256), ReLU, LazyLinear(10). Run: npm run sample:sequential */
import { manualSeed, rand } from '../../src';
import { makeSequential, parameterTable } from './models';

manualSeed(0);
const net = makeSequential();
const X = rand([2, 20]);
const y = net(X);
console.log('output shape:', y.shape);
console.log(parameterTable(net));
console.log(net.toString());
