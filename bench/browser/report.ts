/**
 * The browser bench's report: a console table and the markdown block of bench/README.md between
 * `<!-- bench-browser:start -->` and `<!-- bench-browser:end -->` (node dist/bench/update-readme.js --browser).
 * Ratios are tsnn ms / TF.js ms in the same page and run: below 1x tsnn is faster.
 */
import { CASES } from '../cases';
import { fmtMs, fmtRatio } from '../pairs';
import type { BrowserBenchDoc, BrowserBenchResult } from './types';

export const BROWSER_START = '<!-- bench-browser:start -->';
export const BROWSER_END = '<!-- bench-browser:end -->';

/** The file bench/run.ts --browser writes: the page's answer plus what Node knows of the run. */
export interface BrowserResultsFile extends BrowserBenchDoc {
  date: string;
  elapsedS: number;
  command: string;
  machine: { cpu: string; cores: number; platform: string; node: string; loadavgStart: number[]; loadavgEnd: number[] };
  chromium: string;
  protocol: { warmup: number; rounds: number; budgetMs: number; quick: boolean; statistic: string; minRoundMs: number };
}

export interface CaseRatios {
  id: string;
  title: string;
  /** fastest mode per tsnn device */
  tsnn: Record<string, BrowserBenchResult | null>;
  tfWebgl: number | null;
  tfWasm: number | null;
}

const best = (rs: BrowserBenchResult[]): BrowserBenchResult | null =>
  rs.filter((r) => r.ms !== null).reduce<BrowserBenchResult | null>((a, r) => (a === null || r.ms! < a.ms! ? r : a), null);

export function caseRatios(doc: BrowserBenchDoc): CaseRatios[] {
  const devices = [...new Set(doc.results.filter((r) => r.impl === 'tsnn').map((r) => r.device))];
  return CASES.filter((c) => doc.results.some((r) => r.case === c.id)).map((c) => {
    const rs = doc.results.filter((r) => r.case === c.id);
    return {
      id: c.id,
      title: c.title,
      tsnn: Object.fromEntries(devices.map((d) => [d, best(rs.filter((r) => r.impl === 'tsnn' && r.device === d))])),
      tfWebgl: rs.find((r) => r.impl === 'tfjs-webgl')?.ms ?? null,
      tfWasm: rs.find((r) => r.impl === 'tfjs-wasm')?.ms ?? null,
    };
  });
}

const ratio = (a: number | null | undefined, b: number | null) => (a != null && b !== null ? fmtRatio(a / b) : 'n/a');
const ms = (r: BrowserBenchResult | null) => (r?.ms != null ? `${fmtMs(r.ms)} ms${r.mode === 'compiled' ? ' (compiled)' : ''}` : 'n/a');
const tfMs = (x: number | null) => (x !== null ? `${fmtMs(x)} ms` : 'n/a');

/** Rows: case, tsnn per device, TF.js webgl and wasm, then the ratios that matter (gpu vs webgl, webasm vs wasm). */
function rows(doc: BrowserBenchDoc): { head: string[]; body: string[][] } {
  const rs = caseRatios(doc);
  const devices = Object.keys(rs[0]?.tsnn ?? {});
  const head = [
    'case',
    ...devices.map((d) => `tsnn ${d}`),
    'TF.js webgl',
    'TF.js wasm',
    ...(devices.includes('gpu') ? ['tsnn gpu / TF.js webgl'] : []),
    ...(devices.includes('webasm') ? ['tsnn webasm / TF.js wasm'] : []),
    'best tsnn / best TF.js',
  ];
  const body = rs.map((c) => {
    const tsnnBest = Math.min(...Object.values(c.tsnn).map((r) => r?.ms ?? Infinity));
    const tfBest = Math.min(c.tfWebgl ?? Infinity, c.tfWasm ?? Infinity);
    return [
      c.title,
      ...devices.map((d) => ms(c.tsnn[d])),
      tfMs(c.tfWebgl),
      tfMs(c.tfWasm),
      ...(devices.includes('gpu') ? [ratio(c.tsnn.gpu?.ms, c.tfWebgl)] : []),
      ...(devices.includes('webasm') ? [ratio(c.tsnn.webasm?.ms, c.tfWasm)] : []),
      Number.isFinite(tsnnBest) && Number.isFinite(tfBest) ? fmtRatio(tsnnBest / tfBest) : 'n/a',
    ];
  });
  return { head, body };
}

export function consoleTable(doc: BrowserBenchDoc): string {
  const { head, body } = rows(doc);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const missing = doc.results.filter((r) => r.ms === null).map((r) => `n/a: ${r.case}, ${r.impl} ${r.device} ${r.mode}: ${r.note}`);
  return [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(fmt), ...(missing.length ? ['', ...missing] : [])].join('\n');
}

/** What the page ran on, in one paragraph (renderer, TF.js backends, isolation). */
export function describeRun(doc: BrowserResultsFile): string {
  const gpu = doc.devices.find((d) => d.device === 'gpu');
  const tsnnGl = !gpu?.ok
    ? `no tsnn gpu device (${gpu?.why ?? 'not probed'})`
    : gpu.renderer === doc.webglRenderer
      ? 'tsnn gpu runs on it (WebGL2)'
      : `tsnn gpu on WebGL (${gpu.renderer ?? 'renderer not reported'})`;
  const tf = doc.tfjs;
  return (
    `Chromium ${doc.chromium} headless, ${doc.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated (one thread: no SharedArrayBuffer)'}; ` +
    `WebGL renderer: ${doc.webglRenderer}; ${tsnnGl}. TF.js ${tf.version} (${tf.backends.join(', ')}` +
    `${tf.wasmSimd !== null ? `; wasm SIMD ${tf.wasmSimd ? 'on' : 'off'}, threads ${tf.wasmThreads ? 'on' : 'off'}` : ''}).`
  );
}

/** The markdown between the bench-browser markers. */
export function renderBrowserTable(doc: BrowserResultsFile, source = 'bench/results-browser.json', allowQuick = false): string {
  if (doc.protocol.quick && !allowQuick)
    throw new Error('these browser results come from a --quick run (too few rounds for figures); pass --allow-quick to use them anyway');
  const { head, body } = rows(doc);
  const m = doc.machine;
  const loads = (l: number[]) => l.map((x) => x.toFixed(1)).join(' / ');
  const missing = doc.results
    .filter((r) => r.ms === null)
    .map((r) => `n/a: ${r.case}, ${r.impl} ${r.device}${r.mode !== '-' ? ` ${r.mode}` : ''}: ${r.note}.`);
  return [
    `<!-- generated by \`node dist/bench/update-readme.js --browser\` from ${source}; edit the bench, not this table -->`,
    `Measured ${doc.date.slice(0, 16).replace('T', ' ')} UTC with \`${doc.command}\` on ${m.cpu} (${m.cores} cores, ${m.platform}), ` +
      `load average ${loads(m.loadavgStart)} at the start, ${loads(m.loadavgEnd)} at the end (1 / 5 / 15 min). ${describeRun(doc)} ` +
      `Medians of up to ${doc.protocol.rounds} rounds per implementation, interleaved; each op ends with a read-back, and a timed round repeats it for ≥ ${doc.protocol.minRoundMs} ms.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
    '',
    ...missing,
    ...(missing.length ? [''] : []),
    'Ratios are tsnn time / TF.js time in the same page and run: below 1x tsnn is faster. The WebGL renderer here is ' +
      'software (SwiftShader): read the ratios, not the absolute times.',
  ].join('\n');
}
