/**
 * tsnn in a real browser: the system Chromium, headless, driven by playwright-core (never a downloaded
 * browser), WebGL through SwiftShader. Pages and the bundle (dist/browser/tsnn.mjs, built by `npm run build`)
 * are served from memory with page.route on a localhost origin, once plain and once cross-origin isolated
 * (COOP/COEP headers: SharedArrayBuffer, so kernel threads as Web Workers). Checks: forward, backward and an
 * optimizer step of a small MLP and a conv net on every device the page has, against the same code run in
 * Node (<= 1e-4); a .safetensors round trip Node -> page -> Node, byte-identical; cpu/webasm in the isolated
 * page, with kernels split over Web Workers giving the single-thread bits; WebGL1 where WebGL2 is missing. Skipped, saying why, only where no
 * Chromium is installed (.ci/run installs Debian's `chromium`).
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tsnn from '../../src';
import { repoRoot } from '../helpers';

const CHROMIUM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const ORIGIN = 'http://localhost:8765';
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
const TOLERANCE = 1e-4;

/** The Chromium to drive (TSNN_CHROMIUM, else the system one), or why there is none. */
function findChromium(): { path: string } | { why: string } {
  const candidates = process.env.TSNN_CHROMIUM ? [process.env.TSNN_CHROMIUM] : CHROMIUM_PATHS;
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) return { why: `no Chromium at ${candidates.join(', ')} (Debian: apt-get install chromium; .ci/run does)` };
  try {
    require.resolve('playwright-core');
  } catch {
    return { why: 'playwright-core is not installed (npm ci)' };
  }
  return { path: found };
}

/**
 * The numbers compared between Node and the page. Passed to the page as source text, so it uses nothing but
 * its arguments: `t` is the tsnn module, `device` where to run. Weights are fixed values, not random draws.
 */
function scenario(t: any, device: string): Record<string, number[]> {
  const det = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.round(Math.sin(0.7 * i + k) * 1000) / 2000);
  const T = (shape: number[], k: number) =>
    t
      .tensor(
        det(
          shape.reduce((a: number, b: number) => a * b, 1),
          k,
        ),
        { device },
      )
      .reshape(shape);
  const flat = (ts: any[]) => ts.flatMap((x: any) => Array.from(x.dataSync() as Float32Array));
  const out: Record<string, number[]> = {};

  const mlp = new t.nn.Sequential(new t.nn.Linear(6, 8), new t.nn.ReLU(), new t.nn.Linear(8, 3)).to(device);
  t.noGrad(() => mlp.loadStateDict({ '0.weight': T([8, 6], 1), '0.bias': T([8], 2), '2.weight': T([3, 8], 3), '2.bias': T([3], 4) }));
  const y = mlp(T([4, 6], 5));
  const loss = t.F.mseLoss(y, T([4, 3], 6));
  out.mlpForward = flat([y, loss]);
  loss.backward();
  const mlpParams = mlp.parameters();
  out.mlpGrads = flat(mlpParams.map((p: any) => p.grad));
  new t.optim.Adam(mlpParams, { lr: 0.01 }).step();
  out.mlpStep = flat(mlpParams);

  const conv = new t.nn.Conv2d(2, 3, 3, { padding: 1 }).to(device);
  t.noGrad(() => conv.loadStateDict({ weight: T([3, 2, 3, 3], 7), bias: T([3], 8) }));
  const z = t.F.relu(conv(T([2, 2, 5, 5], 9)));
  const l2 = z.mul(T([2, 3, 5, 5], 10)).sum();
  out.convForward = flat([z, l2]);
  l2.backward();
  const convParams = conv.parameters();
  out.convGrads = flat(convParams.map((p: any) => p.grad));
  new t.optim.SGD(convParams, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }).step();
  out.convStep = flat(convParams);
  return out;
}

/**
 * Three SGD steps of an `nn.compile`d MLP (the first call captures, the next replay the fused graph), its
 * losses and final weights. The replayed kernels are fed textures made both by gpu.js and by tsnn's views of
 * them (matmul's 4-cells-per-thread results): on WebGL2 in a page that once failed with `argumentMismatch`.
 * Source text for the page, like `scenario`.
 */
function compiledScenario(t: any, device: string): Record<string, number[]> {
  const det = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.round(Math.sin(0.37 * i + k) * 1000) / 20000);
  const T = (shape: number[], k: number) =>
    t
      .tensor(
        det(
          shape.reduce((a: number, b: number) => a * b, 1),
          k,
        ),
        { device },
      )
      .reshape(shape);
  const net = new t.nn.Sequential(new t.nn.Linear(32, 16), new t.nn.ReLU(), new t.nn.Linear(16, 4)).to(device);
  t.noGrad(() => net.loadStateDict({ '0.weight': T([16, 32], 1), '0.bias': T([16], 2), '2.weight': T([4, 16], 3), '2.bias': T([4], 4) }));
  const model = t.nn.compile(net);
  const opt = new t.optim.SGD(net.parameters(), { lr: 0.5 });
  const x = T([8, 32], 5).mul(20);
  const y = t.tensor([0, 1, 2, 3, 0, 1, 2, 3], { device });
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    opt.zeroGrad();
    const loss = t.F.crossEntropy(model(x), y);
    loss.backward();
    opt.step();
    losses.push(loss.item());
  }
  return { losses, replays: [model.compileStats.replays], weights: net.parameters().flatMap((p: any) => Array.from(p.dataSync() as Float32Array)) };
}

/** Largest |a - b| / max(1, |b|) over every array of a scenario result, and where. */
function worst(got: Record<string, number[]>, want: Record<string, number[]>): { err: number; at: string } {
  let w = { err: 0, at: '' };
  for (const [k, ref] of Object.entries(want)) {
    expect(got[k], k).to.have.length(ref.length);
    ref.forEach((b, i) => {
      const err = Math.abs(got[k][i] - b) / Math.max(1, Math.abs(b));
      if (!(err <= w.err)) w = { err, at: `${k}[${i}]: ${got[k][i]} vs ${b}` };
    });
  }
  return w;
}

describe('browser: tsnn in Chromium', function () {
  this.timeout(120_000);
  const chromium = findChromium();
  let browser: any = null;
  let dir = '';
  let savedFile = '';
  let nodeRef: Record<string, number[]> = {};
  const bundle = path.join(repoRoot(), 'dist/browser/tsnn.mjs');

  before(async function () {
    if ('why' in chromium) {
      console.log(`    browser tests skipped: ${chromium.why}`);
      this.skip();
    }
    expect(fs.existsSync(bundle), `${bundle} (npm run build makes it)`).to.equal(true);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-browser-'));
    savedFile = path.join(dir, 'mlp.safetensors');
    nodeRef = scenario(tsnn, 'cpu');
    const { chromium: pw } = require('playwright-core');
    browser = await pw.launch({
      executablePath: chromium.path,
      headless: true,
      // WebGL on SwiftShader (software), where no GPU is
      args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
    });
  });

  after(async () => {
    await browser?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A page on ORIGIN with tsnn imported as `globalThis.t`; `isolated`: every response carries COOP/COEP;
   * `noWebGL2`: the page's canvases refuse WebGL2 contexts, as a browser without WebGL2 does.
   */
  async function openPage(isolated: boolean, noWebGL2 = false): Promise<any> {
    const page = await browser.newPage();
    if (noWebGL2)
      await page.addInitScript(() => {
        const proto = (globalThis as any).HTMLCanvasElement.prototype;
        const getContext = proto.getContext;
        proto.getContext = function (this: unknown, kind: string, ...rest: unknown[]) {
          return kind === 'webgl2' ? null : getContext.call(this, kind, ...rest);
        };
      });
    const errors: string[] = [];
    page.on('pageerror', (e: Error) => errors.push(e.message));
    const headers = isolated ? ISOLATION : {};
    const code = fs.readFileSync(bundle);
    await page.route(`${ORIGIN}/**`, (route: any) => {
      const url = new URL(route.request().url());
      if (url.pathname === '/tsnn.mjs') return route.fulfill({ body: code, contentType: 'text/javascript', headers });
      if (url.pathname === '/mlp.safetensors' && fs.existsSync(savedFile))
        return route.fulfill({ body: fs.readFileSync(savedFile), contentType: 'application/octet-stream', headers });
      if (url.pathname === '/') return route.fulfill({ body: '<!doctype html><title>tsnn</title>', contentType: 'text/html', headers });
      return route.fulfill({ status: 404, body: 'not found', headers });
    });
    await page.goto(`${ORIGIN}/`);
    // source text: tsc would compile a dynamic import() in a function to require()
    await page.evaluate("import('/tsnn.mjs').then((m) => { globalThis.t = m; })");
    expect(errors, 'page errors').to.deep.equal([]);
    return page;
  }

  async function runScenario(page: any, device: string): Promise<Record<string, number[]>> {
    return page.evaluate(([src, d]: [string, string]) => (0, eval)(`(${src})`)((globalThis as any).t, d), [scenario.toString(), device]);
  }

  describe('a plain page', () => {
    let page: any = null;
    before(async function () {
      if (!browser) this.skip();
      page = await openPage(false);
    });

    it("has cpu, webasm and gpu (WebGL on SwiftShader, named by deviceReport); 'auto' ranks software GL below webasm", async () => {
      const r = await page.evaluate(() => {
        const t = (globalThis as any).t;
        return { report: t.deviceReport(), auto: t.getDefaultDevice(), kernel: t.backendFor('gpu').implementation };
      });
      const ok = Object.fromEntries(r.report.map((d: any) => [d.device, d]));
      expect(ok.cpu.ok, ok.cpu.why).to.equal(true);
      expect(ok.webasm.ok, ok.webasm.why).to.equal(true);
      expect(ok.gpu.ok, `gpu (WebGL) in Chromium: ${ok.gpu.why}`).to.equal(true);
      expect(ok.gpu.renderer).to.match(/SwiftShader/i);
      expect(r.kernel).to.equal('WebGL2Kernel');
      expect(r.auto).to.equal('webasm');
    });

    it('forward, backward and an optimizer step match Node on every device (<= 1e-4)', async () => {
      const devices: string[] = await page.evaluate(() =>
        (globalThis as any).t
          .deviceReport()
          .filter((d: any) => d.ok)
          .map((d: any) => d.device),
      );
      expect(devices).to.include.members(['cpu', 'webasm', 'gpu']);
      for (const device of devices) {
        const w = worst(await runScenario(page, device), nodeRef);
        expect(w.err, `${device}: worst ${w.at}`).to.be.at.most(TOLERANCE);
      }
    });

    it("an nn.compile'd MLP's SGD steps on gpu (replayed graph on WebGL2) match Node (<= 1e-4)", async () => {
      const want = compiledScenario(tsnn, 'cpu');
      expect(want.replays).to.deep.equal([2]);
      const got = await page.evaluate(
        ([src, d]: [string, string]) => (0, eval)(`(${src})`)((globalThis as any).t, d),
        [compiledScenario.toString(), 'gpu'],
      );
      const w = worst(got, want);
      expect(w.err, `gpu compiled: worst ${w.at}`).to.be.at.most(TOLERANCE);
    });

    it('gpu (WebGL2): a loop that never yields stays under a small texture budget, with the losses of an unbounded run', async () => {
      const r = await page.evaluate(() => {
        const t = (globalThis as any).t;
        const stats = t.backendFor('gpu').stats;
        const run = (budget: number | undefined) => {
          t.setBackendOptions({ glTextureBudgetMb: budget });
          t.manualSeed(0);
          const net = t.nn.Sequential(t.nn.Linear(32, 64), t.nn.ReLU(), t.nn.Linear(64, 4)).to('gpu');
          const opt = t.optim.Adam(net.parameters(), { lr: 1e-3 });
          const x = t.randn([16, 32], { device: 'gpu' });
          const y = t.tensor(
            Array.from({ length: 16 }, (_, i) => i % 4),
            { device: 'gpu' },
          );
          const live0 = stats.live;
          const spills0 = stats.spills;
          const losses: number[] = [];
          let maxLive = 0;
          for (let i = 0; i < 60; i++) {
            opt.zeroGrad();
            const loss = t.F.crossEntropy(net(x), y);
            loss.backward();
            opt.step();
            losses.push(loss.item());
            maxLive = Math.max(maxLive, stats.live - live0);
          }
          return { losses, maxLive, spills: stats.spills - spills0 };
        };
        try {
          return { bounded: run(0.25), unbounded: run(undefined) };
        } finally {
          t.setBackendOptions({ glTextureBudgetMb: undefined });
        }
      });
      expect(r.unbounded.spills).to.equal(0);
      expect(r.unbounded.maxLive, 'textures pile up without the budget (finalizers wait for the page to yield)').to.be.greaterThan(600);
      expect(r.bounded.spills, 'spilled').to.be.greaterThan(60);
      // 0.25 MiB: at most 64 textures resident (each charged 4 KiB at least)
      expect(r.bounded.maxLive, 'textures neither deleted nor spilled').to.be.lessThan(150);
      expect(r.bounded.losses).to.deep.equal(r.unbounded.losses);
    });

    it('a .safetensors file goes Node -> page (loadUrl) -> Node byte-identical, on every device', async () => {
      tsnn.manualSeed(3);
      const model = new tsnn.nn.Sequential(new tsnn.nn.Linear(6, 8), new tsnn.nn.ReLU(), new tsnn.nn.Linear(8, 3));
      tsnn.saveFile(model.stateDict(), savedFile);
      const original = fs.readFileSync(savedFile);
      const devices: string[] = await page.evaluate(() =>
        (globalThis as any).t
          .deviceReport()
          .filter((d: any) => d.ok)
          .map((d: any) => d.device),
      );
      for (const device of devices) {
        const back: number[] = await page.evaluate(async (d: string) => {
          const t = (globalThis as any).t;
          const m = new t.nn.Sequential(new t.nn.Linear(6, 8), new t.nn.ReLU(), new t.nn.Linear(8, 3)).to(d);
          m.loadStateDict(await t.loadUrl('/mlp.safetensors', { device: d }));
          return Array.from(t.serialize(m.stateDict()) as Uint8Array);
        }, device);
        const bytes = Buffer.from(Uint8Array.from(back));
        expect(bytes.equals(original), `${device}: the page's bytes are the file's`).to.equal(true);
        const file = path.join(dir, `from-page-${device}.safetensors`);
        fs.writeFileSync(file, bytes);
        const loaded = tsnn.loadFile(file);
        for (const [k, v] of Object.entries(model.stateDict())) expect(Array.from(loaded[k].dataSync()), k).to.deep.equal(Array.from(v.dataSync()));
      }
    });

    it('saveFile says to use serialize/loadUrl; a plain page runs kernels on one thread', async () => {
      const r = await page.evaluate(() => {
        const t = (globalThis as any).t;
        let message = '';
        try {
          t.saveFile({ w: t.ones([2]) }, 'x.safetensors');
        } catch (e) {
          message = (e as Error).message;
        }
        return { message, isolated: (globalThis as any).crossOriginIsolated, threads: t.backendFor('webasm').threads };
      });
      expect(r.message).to.match(/no file system in a browser: use serialize/);
      expect(r.isolated).to.equal(false);
      expect(r.threads).to.equal(1);
    });
  });

  describe('a cross-origin-isolated page without WebGL2', () => {
    let page: any = null;
    before(async function () {
      if (!browser) this.skip();
      page = await openPage(true, true);
    });

    it('gpu falls back to WebGL1 and matches Node', async () => {
      const r = await page.evaluate(() => {
        const t = (globalThis as any).t;
        const gpu = t.deviceReport().find((d: any) => d.device === 'gpu');
        return { gpu, kernel: gpu.ok ? t.backendFor('gpu').implementation : null };
      });
      expect(r.gpu.ok, `gpu on WebGL1: ${r.gpu.why}`).to.equal(true);
      expect(r.kernel).to.equal('WebGLKernel');
      const w = worst(await runScenario(page, 'gpu'), nodeRef);
      expect(w.err, `gpu (WebGL1): worst ${w.at}`).to.be.at.most(TOLERANCE);
    });

    it('cpu and webasm match Node, and split kernels over Web Workers with the single-thread bits', async () => {
      expect(await page.evaluate(() => (globalThis as any).crossOriginIsolated)).to.equal(true);
      for (const device of ['cpu', 'webasm']) {
        const w = worst(await runScenario(page, device), nodeRef);
        expect(w.err, `${device}: worst ${w.at}`).to.be.at.most(TOLERANCE);
        const r = await page.evaluate(async (d: string) => {
          const t = (globalThis as any).t;
          t.manualSeed(5);
          // 256 x 256 outputs x 192 inner steps: over the size at which a kernel is split (SPLIT_WORK)
          const a = t.rand([256, 192], { device: d });
          const b = t.rand([192, 256], { device: d });
          // matmul on the gpu.js kernel, which splits over the workers (webasm's direct WebAssembly gemm runs on one thread)
          t.setBackendOptions({ threads: 1, wasmMatmul: false });
          const one = Array.from(a.matmul(b).dataSync() as Float32Array);
          t.setBackendOptions({ threads: 2, split: 'always' });
          const stats = t.backendFor(d).threadStats;
          let split: number[] = [];
          // a page starts its Web Workers once it yields: until then the calling thread runs every part
          for (let k = 0; k < 100 && stats.workerParts === 0; k++) {
            await new Promise((r) => setTimeout(r, 100));
            split = Array.from(a.matmul(b).dataSync() as Float32Array);
          }
          t.setBackendOptions({ threads: undefined, split: undefined, wasmMatmul: undefined });
          return { same: split.length === one.length && split.every((v, i) => Object.is(v, one[i])), workerParts: stats.workerParts };
        }, device);
        expect(r.workerParts, `${device}: parts run by Web Workers`).to.be.greaterThan(0);
        expect(r.same, `${device}: split result = single-thread bits`).to.equal(true);
      }
    });
  });
});
