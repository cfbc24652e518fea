/**
 * `npm run bench -- --browser`: bench/run.ts's cases in headless Chromium (the system's), tsnn on each device
 * the page has (cpu, webasm, gpu = WebGL) beside TF.js 4.22's `webgl` and `wasm` backends, in one page and run
 * (page.ts). Prints the table, the ratios and the WebGL renderer; writes bench/results-browser.json, which
 * `node dist/bench/update-readme.js --browser` turns into bench/README.md's browser table.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { browserBundleOptions } from '../../samples/browser/bundle';
import { findChromium, launchChromium, serveDir, NO_CHROMIUM } from '../../samples/browser/headless';
import type { CaseId } from '../cases';
import type { BrowserBenchDoc, BrowserBenchOptions } from './types';
import { consoleTable, describeRun, BrowserResultsFile } from './report';

const MIN_ROUND_MS = 10;

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** index.html, the page bundle and TF.js's .wasm files (setWasmPaths points at the page's own directory). */
async function buildBenchSite(outdir: string): Promise<void> {
  const esbuild = await import('esbuild');
  fs.mkdirSync(outdir, { recursive: true });
  fs.writeFileSync(
    path.join(outdir, 'index.html'),
    '<!doctype html>\n<meta charset="utf-8">\n<title>tsnn browser bench</title>\n<script type="module" src="bench.js"></script>\n',
  );
  const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) fs.copyFileSync(path.join(wasmDir, f), path.join(outdir, f));
  await esbuild.build(browserBundleOptions({ entryPoints: { bench: path.join(repoRoot(), 'bench', 'browser', 'page.ts') }, outdir }));
}

export interface BrowserRunOptions {
  cases: CaseId[];
  devices?: string;
  warmup: number;
  rounds: number;
  budget: number;
  quick: boolean;
  tfjs: boolean;
  out: string;
}

export async function runBrowserBench(o: BrowserRunOptions): Promise<void> {
  const exe = findChromium();
  if (!exe) throw new Error(`--browser: ${NO_CHROMIUM}`);
  const started = new Date();
  const loadStart = os.loadavg();
  const www = path.join(repoRoot(), 'dist', 'bench', 'browser-www');
  await buildBenchSite(www);
  const server = await serveDir(www);
  const browser = await launchChromium(exe);
  try {
    const page = await browser.newPage();
    page.on('console', (m) => m.text().startsWith('[bench]') && console.error(`  ${m.text().slice(8)}`));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page
      .waitForFunction(() => 'tsnnBench' in globalThis, null, { timeout: 60_000 })
      .catch(() => {
        throw new Error(`the bench page did not start${errors.length ? `: ${errors.join('; ')}` : ''}`);
      });
    const opts: BrowserBenchOptions = {
      cases: o.cases.filter((c) => !c.startsWith('resnet18')),
      devices: o.devices ? o.devices.split(',') : null,
      warmup: o.warmup,
      rounds: o.rounds,
      budget: o.budget,
      tfjs: o.tfjs,
      minRoundMs: MIN_ROUND_MS,
    };
    console.error(`browser bench in Chromium ${browser.version()}: cases ${opts.cases.join(', ')} (resnet18_eval, resnet18_eval_b16: Node only)`);
    const doc: BrowserBenchDoc = await page.evaluate(
      (x) => (globalThis as unknown as { tsnnBench: { run(o: BrowserBenchOptions): Promise<BrowserBenchDoc> } }).tsnnBench.run(x),
      opts,
    );
    const cpu = os.cpus();
    const file: BrowserResultsFile = {
      date: started.toISOString(),
      elapsedS: Math.round((Date.now() - started.getTime()) / 1000),
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      machine: {
        cpu: cpu[0]?.model ?? 'unknown CPU',
        cores: cpu.length,
        platform: `${os.platform()} ${os.arch()}`,
        node: process.version,
        loadavgStart: loadStart,
        loadavgEnd: os.loadavg(),
      },
      chromium: browser.version(),
      protocol: { warmup: o.warmup, rounds: o.rounds, budgetMs: o.budget, quick: o.quick, statistic: 'median', minRoundMs: MIN_ROUND_MS },
      ...doc,
    };
    console.log(`\ntsnn browser bench, ${file.date}`);
    console.log(
      `machine: ${file.machine.cpu}, ${file.machine.cores} cores; load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} at the start`,
    );
    console.log(describeRun(file));
    console.log(`\n${consoleTable(doc)}\n`);
    console.log('- ratios are tsnn ms / TF.js ms in the same page and run (below 1x: tsnn faster); tsnn rows: the faster of eager and nn.compile');
    console.log('- WebGL here is software (SwiftShader): the ratios carry over, the absolute times do not');
    if (errors.length) console.log(`- page errors: ${errors.join('; ')}`);
    fs.writeFileSync(o.out, JSON.stringify(file, null, 2) + '\n');
    console.log(`- ${file.elapsedS} s in all; results written to ${path.relative(process.cwd(), o.out)}`);
  } finally {
    await browser.close();
    await server.stop();
  }
}
