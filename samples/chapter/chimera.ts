/**
 * d2l "Layers and Modules": the chimera — Sequential(NestMLP(), LazyLinear(20), FixedHiddenMLP()).
 * Run: npm run sample:chimera
 */
import { manualSeed, rand } from '../../src';
import { makeChimera, parameterTable } from './models';

manualSeed(0);
const chimera = makeChimera();
const X = rand([2, 20]);
const y = chimera(X);
console.log('output shape:', y.shape, 'value:', y.item());
console.log(parameterTable(chimera));
console.log('stateDict keys:', Object.keys(chimera.stateDict()).join(', '));
console.log(chimera.toString());
