/**
 * The browser demo (samples/browser) in a real headless Chromium: the page trains the MNIST MLP to ≥ 90% on the
 * 2,000 held-out digits, and its predictions and weights agree with tsnn in Node. Skipped, saying why, only where
 * no Chromium is installed.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { buildSite, repoRoot } from '../../samples/browser/site';
import { findChromium, launchChromium, serveDir, pageErrors, NO_CHROMIUM } from '../../samples/browser/headless';
import { loadMnist } from '../../samples/mnist/data';
import { MLP } from '../../samples/mnist/models';
import { deserialize, serialize, saveFile, manualSeed, noGrad, tensor, F, tidy } from '../../src';
import type { DemoApi } from '../../samples/browser/demo-api';

declare const tsnnDemo: DemoApi;

/** The page's current weights, as safetensors bytes (base64 across the DevTools protocol: far faster than an array). */
async function weightsFromPage(page: Page): Promise<Uint8Array> {
  const b64 = await page.evaluate(() => {
    const bytes = tsnnDemo.saveWeights();
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(bin);
  });
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

describe('browser demo (Chromium)', function () {
  this.timeout(240_000);
  let browser: Browser | null = null;
  let server: { url: string; stop(): Promise<void> } | null = null;
  let page: Page;
  let errors: string[] = [];
  const mnist = loadMnist();

  before(async function () {
    const exe = findChromium();
    if (!exe) {
      console.log(`      browser demo tests skipped: ${NO_CHROMIUM}`);
      this.skip();
    }
    const www = path.join(repoRoot(), 'dist', 'test', 'browser', 'demo-www');
    await buildSite(www);
    server = await serveDir(www);
    browser = await launchChromium(exe!);
    page = await browser.newPage();
    errors = pageErrors(page);
    await page.goto(server.url);
    await page.waitForFunction(() => 'tsnnDemo' in globalThis, null, { timeout: 30_000 });
    await page.evaluate(() => tsnnDemo.ready);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  afterEach(() => expect(errors, 'uncaught errors in the page').to.deep.equal([]));

  it('holds the same held-out digits as the Node sample', async () => {
    expect(await page.evaluate(() => tsnnDemo.testSize())).to.equal(mnist.test.n);
    for (const i of [0, 777, mnist.test.n - 1]) {
      const d = await page.evaluate((k) => tsnnDemo.testDigit(k), i);
      expect(d.label).to.equal(mnist.test.labels[i]);
      expect(d.pixels).to.deep.equal(Array.from(mnist.test.images.subarray(i * 784, (i + 1) * 784)));
    }
  });

  it('trains the MLP in the page to ≥ 90% test accuracy', async () => {
    // a short recipe (one epoch of batch 32 on webasm) of the demo's loop; the page's default is 3 epochs
    const r = await page.evaluate(() => tsnnDemo.train({ deviceSpec: 'webasm', epochs: 1, batchSize: 32, lr: 2e-3, shift: 0 }));
    console.log(`      page trained on ${r.device}: test accuracy ${(r.testAccuracy * 100).toFixed(2)}% in ${r.seconds.toFixed(1)} s`);
    expect(r.device).to.equal('webasm');
    expect(r.history).to.have.length(1);
    expect(r.testAccuracy).to.be.at.least(0.9);
    expect(await page.evaluate(() => tsnnDemo.evaluate())).to.equal(r.testAccuracy);
  });

  it("predicts real test digits as Node's forward pass does on the page's weights", async () => {
    const bytes = await weightsFromPage(page);
    const model = new MLP().to('webasm');
    model.loadStateDict(deserialize(bytes));
    model.eval();
    let right = 0;
    const picks = Array.from({ length: 20 }, (_, k) => k * 97);
    for (const i of picks) {
      const d = await page.evaluate((k) => tsnnDemo.testDigit(k), i);
      const got = await page.evaluate((px) => tsnnDemo.predict(px), d.pixels);
      const want = tidy(() => noGrad(() => Array.from(F.softmax(model(tensor(d.pixels, { shape: [1, 784], device: 'webasm' })), 1).dataSync())));
      got.probs.forEach((p, k) => expect(p).to.be.closeTo(want[k], 1e-4));
      expect(got.digit).to.equal(want.indexOf(Math.max(...want)));
      if (got.digit === d.label) right++;
    }
    expect(right, 'of 20 test digits').to.be.at.least(16);
  });

  it('loads safetensors as `npm run mnist` saves them and scores them as Node does', async () => {
    manualSeed(7);
    const model = new MLP().to('webasm');
    const bytes = serialize(model.stateDict());
    const r = await page.evaluate(
      (b64) => tsnnDemo.loadWeights(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))),
      Buffer.from(bytes).toString('base64'),
    );
    expect(r.keys.sort()).to.deep.equal(Object.keys(model.stateDict()).sort());
    model.eval();
    const logits = noGrad(() => model(tensor(mnist.test.images, { shape: [mnist.test.n, 784], device: 'webasm' })));
    const pred = logits.argmax(1).dataSync();
    const correct = pred.reduce((n, p, i) => n + (p === mnist.test.labels[i] ? 1 : 0), 0);
    expect(r.testAccuracy).to.be.closeTo(correct / mnist.test.n, 1.5 / mnist.test.n);
    const back = await weightsFromPage(page);
    expect(Buffer.from(back).equals(Buffer.from(bytes)), 'page → Node bytes identical').to.equal(true);

    // the page's file input, with a file saveFile wrote (as `npm run mnist` does)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-demo-'));
    try {
      const file = path.join(dir, 'mnist-mlp.safetensors');
      saveFile(model.stateDict(), file);
      await page.setInputFiles('#file', file);
      await page
        .locator('#file-status')
        .filter({ hasText: /^(loaded|could not load)/ })
        .waitFor({ timeout: 120_000 });
      const shown = await page.textContent('#file-status');
      expect(shown).to.match(/^loaded mnist-mlp\.safetensors: 6 tensors/);
      expect(shown).to.contain(`test accuracy ${(r.testAccuracy * 100).toFixed(2)}%`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
