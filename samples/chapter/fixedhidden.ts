/**
 * d2l "Layers and Modules": FixedHiddenMLP — a constant buffer, one Linear used twice, a data-dependent
 * while loop. Run: npm run sample:fixedhidden
 */
import { manualSeed, rand } from '../../src';
import { FixedHiddenMLP, parameterTable } from './models';

manualSeed(0);
const net = new FixedHiddenMLP();
const X = rand([2, 20]);
const y = net(X);
console.log('output shape:', y.shape, 'value:', y.item());
console.log(parameterTable(net));
console.log(
  'buffers:',
  net
    .namedBuffers()
    .map(([n, b]) => `${n} [${b.shape.join(', ')}]`)
    .join(', '),
);
console.log(net.toString());
