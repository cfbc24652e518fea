/**
 * The browser demo: trains the MNIST MLP in this page with tsnn, charts loss and accuracy live, predicts
 * digits drawn on a canvas, and loads/saves safetensors weights (the file `npm run mnist` writes loads here).
 * `window.tsnnDemo` is the same functionality as a small API, which the browser test drives.
 */
import { deviceReport, setDefaultDevice, getDefaultDevice, serialize, deserialize, noGrad, tensor, F, DeviceName, DeviceSpec } from '../../../src';
import type { Split } from '../../mnist/batches';
import type { MLP } from '../../mnist/models';
import { fetchDigits } from './digits';
import { train, accuracy, makeModel, TrainOptions, EpochInfo } from './trainer';
import { LiveChart } from './chart';
import { DrawPad, paint28 } from './draw-pad';
import type { DemoApi, TrainRequest } from '../demo-api';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

let data: { train: Split; test: Split } | null = null;
let device: DeviceName = setDefaultDevice('auto');
let model: MLP = makeModel(device);
let trained = false;
let busy = false;
let stopRequested = false;

function showDevice(): void {
  const report = deviceReport();
  const mine = report.find((d) => d.device === device);
  $('device').textContent = device;
  $('renderer').textContent = mine?.renderer ? `(${mine.renderer})` : '';
  $('devices').textContent = report
    .map((d) => `${d.device}: ${d.ok ? `ok${d.renderer ? ` (${d.renderer})` : ''}` : `unavailable (${d.why})`}`)
    .join(' · ');
  for (const opt of $<HTMLSelectElement>('device-select').options)
    opt.disabled = opt.value !== 'auto' && !report.find((d) => d.device === opt.value)?.ok;
}

function status(text: string): void {
  $('status').textContent = text;
}

/** Moves to `spec` (a fresh model when the device changes; the weights move with it). */
function useDevice(spec: DeviceSpec): DeviceName {
  const d = setDefaultDevice(spec);
  if (d !== device) {
    model = model.to(d);
    device = d;
  }
  showDevice();
  return d;
}

async function runTraining(req: TrainRequest = {}): Promise<{ device: DeviceName; history: EpochInfo[]; testAccuracy: number; seconds: number }> {
  if (!data) throw new Error('the digits are not loaded yet (await tsnnDemo.ready)');
  if (busy) throw new Error('training is already running');
  busy = true;
  stopRequested = false;
  const chart = liveChart;
  chart?.reset();
  $<HTMLButtonElement>('train').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  const t0 = performance.now();
  try {
    const d = useDevice(req.deviceSpec ?? device);
    model = makeModel(d);
    const o: TrainOptions = { device: d, epochs: 3, batchSize: 64, lr: 2e-3, shift: 0, seed: 0, ...req };
    let lastShown = 0;
    const history = await train(model, data, o, {
      onStep: (s) => {
        chart?.addLoss(s.epoch - 1 + s.step / s.stepsPerEpoch, s.loss);
        if (performance.now() - lastShown > 100 || s.step === s.stepsPerEpoch) {
          lastShown = performance.now();
          status(
            `epoch ${s.epoch}/${o.epochs}, batch ${s.step}/${s.stepsPerEpoch}: loss ${s.loss.toFixed(4)}, ${Math.round(s.imagesPerSecond)} images/s on ${d}`,
          );
        }
      },
      onEpoch: (e) => {
        chart?.addAccuracy(e.epoch, e.testAccuracy);
        status(
          `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, test accuracy ${(e.testAccuracy * 100).toFixed(2)}% (${e.seconds.toFixed(1)} s)`,
        );
      },
      shouldStop: () => stopRequested,
    });
    trained = true;
    const testAccuracy = history.length ? history[history.length - 1].testAccuracy : 0;
    const seconds = (performance.now() - t0) / 1000;
    status(
      `done on ${d}: test accuracy ${(testAccuracy * 100).toFixed(2)}% on ${data.test.n} held-out digits after ${history.length} epoch(s), ${seconds.toFixed(1)} s`,
    );
    return { device: d, history, testAccuracy, seconds };
  } finally {
    busy = false;
    $<HTMLButtonElement>('train').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

/** Class probabilities of one 28×28 image (784 values in [0, 1]). */
function predict(pixels: ArrayLike<number>): { digit: number; probs: number[] } {
  if (pixels.length !== 784) throw new Error(`predict: expected 784 pixel values (28×28), got ${pixels.length}`);
  model.eval();
  const probs = noGrad(() => {
    const x = tensor(Float32Array.from(pixels), { shape: [1, 784], device });
    const p = F.softmax(model(x), 1);
    const out = Array.from(p.dataSync());
    x.dispose();
    p.dispose();
    return out;
  });
  return { digit: probs.indexOf(Math.max(...probs)), probs };
}

function showPrediction(pixels: Float32Array | null): void {
  paint28($<HTMLCanvasElement>('preview'), pixels);
  const table = $('probs');
  table.replaceChildren();
  if (!pixels) {
    $('guess').textContent = '–';
    return;
  }
  const { digit, probs } = predict(pixels);
  $('guess').textContent = trained ? String(digit) : `${digit}?`;
  probs.forEach((p, k) => {
    const tr = table.appendChild(document.createElement('tr'));
    tr.innerHTML = `<td>${k}</td><td style="width:120px"><div class="bar" style="width:${(p * 100).toFixed(1)}%"></div></td><td>${(p * 100).toFixed(1)}%</td>`;
  });
}

/** Loads safetensors weights into the MLP (key names as `npm run mnist` writes them); returns test accuracy. */
async function loadWeights(bytes: Uint8Array): Promise<{ keys: string[]; testAccuracy: number }> {
  if (!data) throw new Error('the digits are not loaded yet (await tsnnDemo.ready)');
  const sd = deserialize(bytes, { source: 'the chosen file' });
  const fresh = makeModel(device);
  fresh.loadStateDict(sd);
  for (const t of Object.values(sd)) t.dispose();
  model = fresh;
  trained = true;
  const testAccuracy = accuracy(model, data.test, device);
  return { keys: Object.keys(sd), testAccuracy };
}

function testDigit(i: number): { pixels: number[]; label: number } {
  if (!data) throw new Error('the digits are not loaded yet (await tsnnDemo.ready)');
  const t = data.test;
  if (!Number.isInteger(i) || i < 0 || i >= t.n) throw new RangeError(`testDigit: index ${i} outside 0..${t.n - 1}`);
  return { pixels: Array.from(t.images.subarray(i * 784, (i + 1) * 784)), label: t.labels[i] };
}

// ---- wiring ------------------------------------------------------------------------------------------------
let liveChart: LiveChart | null = null;
try {
  liveChart = new LiveChart($<HTMLCanvasElement>('chart'));
} catch (e) {
  console.warn(`chart unavailable: ${(e as Error).message}`);
}
const pad = new DrawPad($<HTMLCanvasElement>('pad'), () => showPrediction(pad.pixels()));
showDevice();

$('train').addEventListener('click', () => {
  runTraining({
    deviceSpec: $<HTMLSelectElement>('device-select').value as DeviceSpec,
    epochs: Number($<HTMLInputElement>('epochs').value),
    batchSize: Number($<HTMLInputElement>('batch').value),
    lr: Number($<HTMLInputElement>('lr').value),
  }).catch((e) => status(`error: ${(e as Error).message}`));
});
$('stop').addEventListener('click', () => (stopRequested = true));
$('clear').addEventListener('click', () => {
  pad.clear();
  showPrediction(null);
});
$('random-digit').addEventListener('click', () => {
  if (!data) return;
  const { pixels } = testDigit(Math.floor(Math.random() * data.test.n));
  pad.show(pixels);
  showPrediction(pad.pixels());
});
$<HTMLInputElement>('file').addEventListener('change', async (ev) => {
  const file = (ev.target as HTMLInputElement).files?.[0];
  if (!file) return;
  try {
    const r = await loadWeights(new Uint8Array(await file.arrayBuffer()));
    $('file-status').textContent =
      `loaded ${file.name}: ${r.keys.length} tensors (${r.keys.join(', ')}); test accuracy ${(r.testAccuracy * 100).toFixed(2)}%`;
    showPrediction(pad.pixels());
  } catch (e) {
    $('file-status').textContent = `could not load ${file.name}: ${(e as Error).message}`;
  }
});
$('save').addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob([serialize(model.stateDict()) as BlobPart], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: 'mnist-mlp.safetensors' });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
});

const ready = fetchDigits('mnist-digits.bin.gz').then((d) => {
  data = d;
  status(`${d.train.n} training and ${d.test.n} held-out digits loaded; press Train (device ${getDefaultDevice()})`);
});
ready.catch((e) => status(`error loading the digits: ${(e as Error).message}`));

/** The page's API (the browser test drives it; handy from the console too). */
const api: DemoApi = {
  ready,
  get device(): DeviceName {
    return device;
  },
  deviceReport,
  useDevice,
  train: runTraining,
  stop: () => void (stopRequested = true),
  predict,
  testDigit,
  testSize: () => data?.test.n ?? 0,
  evaluate: () => {
    if (!data) throw new Error('the digits are not loaded yet (await tsnnDemo.ready)');
    return accuracy(model, data.test, device);
  },
  loadWeights: (bytes: Uint8Array | number[]) => loadWeights(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes)),
  saveWeights: () => serialize(model.stateDict()),
};
(globalThis as unknown as { tsnnDemo: DemoApi }).tsnnDemo = api;
