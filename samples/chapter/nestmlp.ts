/** d2l "Layers and Modules": NestMLP — a Sequential and a Linear nested in a Module. Run: npm run sample:nestmlp */
import { manualSeed, rand } from '../../src';
import { NestMLP, parameterTable } from './models';

manualSeed(0);
const net = new NestMLP();
const X = rand([2, 20]);
const y = net(X);
console.log('output shape:', y.shape);
console.log(parameterTable(net));
console.log(net.toString());
