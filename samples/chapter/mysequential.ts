/** d2l "Layers and Modules": Sequential written by hand with addModule + children(). Run: npm run sample:mysequential */
import { manualSeed, nn, rand } from '../../src';
import { MySequential, parameterTable } from './models';

manualSeed(0);
const net = new MySequential(new nn.LazyLinear(256), new nn.ReLU(), new nn.LazyLinear(10));
const X = rand([2, 20]);
const y = net(X);
console.log('output shape:', y.shape);
console.log(parameterTable(net));
console.log(net.toString());
