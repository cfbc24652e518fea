/**
 * The tsnn compiler transformer, through `bin/ttsc.js`, on small fixture projects.
 *
 * The fixtures (test/transformer/fixtures) do not use the real runtime: `fixtures/lib/tsnn` is a tiny
 * fake `tsnn` package (tagged Module / Tensor classes and decorators that throw if they ever run). Each
 * run copies the fixture projects into a temporary workspace with that package at node_modules/tsnn,
 * compiles them with ttsc (in parallel: ttsc start-up costs 1-2 s) and checks the emitted JS, the
 * diagnostics and the exit codes.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { EXPECTED_DIAGNOSTICS } from './expected-diagnostics';

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, 'bin/ttsc.js'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

const ROOT = findRepoRoot();
const TTSC = path.join(ROOT, 'bin/ttsc.js');
const TRANSFORMER = path.join(ROOT, 'transformer/dist/index.js');
const TSC = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
const FIXTURES = path.join(ROOT, 'test/transformer/fixtures');

interface Result {
  status: number | null;
  /** stdout + stderr */
  output: string;
}

function runNode(args: string[], cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

const ttsc = (cwd: string, ...args: string[]) => runNode([TTSC, ...args], cwd);
const tsc = (cwd: string, ...args: string[]) => runNode([TSC, ...args], cwd);

/** A temporary workspace: the given fixture projects plus the fake tsnn package in node_modules. */
function makeWorkspace(projects: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-'));
  fs.cpSync(path.join(FIXTURES, 'lib/tsnn'), path.join(dir, 'node_modules/tsnn'), { recursive: true });
  for (const p of projects) fs.cpSync(path.join(FIXTURES, p), path.join(dir, p), { recursive: true });
  return dir;
}

/** The transformer ships compiled; build it when missing or older than its sources. */
async function ensureTransformerBuilt(): Promise<void> {
  const srcDir = path.join(ROOT, 'transformer/src');
  const newestSrc = Math.max(...fs.readdirSync(srcDir).map((f) => fs.statSync(path.join(srcDir, f)).mtimeMs));
  if (fs.existsSync(TRANSFORMER) && fs.statSync(TRANSFORMER).mtimeMs >= newestSrc) return;
  const r = await tsc(ROOT, '-p', path.join(ROOT, 'transformer/tsconfig.json'));
  if (r.status !== 0) throw new Error(`building the transformer failed:\n${r.output}`);
}

interface Diag {
  file: string;
  line: number;
  col: number;
  code: number;
  message: string;
}

/** Parses tsc's diagnostics, plain (`f(1,2): error TS1: m`) or --pretty (`f:1:2 - error TS1: m`). */
function parseDiagnostics(output: string): Diag[] {
  const text = output.replace(/\x1b\[[0-9;]*m/g, '');
  const out: Diag[] = [];
  const re = /^(\S+?)(?:\((\d+),(\d+)\):|:(\d+):(\d+) -) error TS(\d+): (.*)$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ file: m[1], line: +(m[2] ?? m[4]), col: +(m[3] ?? m[5]), code: +m[6], message: m[7] });
  }
  return out;
}

const show = (d: Diag) => `${d.file}:${d.line}:${d.col} TS${d.code} ${d.message}`;
const tsnnDiags = (output: string) =>
  parseDiagnostics(output)
    .filter((d) => d.code >= 90000 && d.code < 91000)
    .map(show);

type Entry = { name: string; kind: string; persistent?: boolean };
const c = (name: string): Entry => ({ name, kind: 'child' });
const p = (name: string): Entry => ({ name, kind: 'param' });
const b = (name: string, persistent = true): Entry => ({ name, kind: 'buffer', persistent });

const TABLES: Record<string, Entry[] | null> = {
  MLP: [c('hidden'), c('out')],
  Scale: [p('gain'), b('mask'), b('scratch', false), b('kept'), p('bias'), b('defaulted')],
  Containers: [
    c('layers'),
    c('frozen'),
    c('byName'),
    c('dict'),
    c('map'),
    c('maybe'),
    c('seq'),
    p('w'),
    b('viaConst', false),
    c('secret'),
    c('quoted-name'),
  ],
  Logged: [c('first')],
  Decorated: [c('a'), p('p')],
  Sub: [p('extra')],
  Generic: [c('x'), c('many'), c('pair'), c('anyish')],
  Untouched: null,
  NotAModule: null,
};
const EXPRESSION_TABLES: Record<string, Entry[]> = {
  Anon: [c('inner')],
  Nested: [b('b')],
  WithHead: [c('head')],
};

/** Loads the emitted JS (the fake decorators throw if any survived) and reads every class's own table. */
function inspectScript(outDir: string, withExpressions: boolean): string {
  return `
    const own = (k) => Object.prototype.hasOwnProperty.call(k, '__tsnnFields') ? k.__tsnnFields : null;
    const m = require('./${outDir}/models.js');
    const plain = require('./${outDir}/plain.js');
    const tables = {};
    for (const k of ['MLP', 'Scale', 'Containers', 'Logged', 'Decorated', 'Sub', 'Generic']) { tables[k] = own(m[k]); new m[k](); }
    tables.Untouched = own(plain.Untouched);
    tables.NotAModule = own(plain.NotAModule);
    if (${withExpressions}) {
      const e = require('./${outDir}/expressions.js');
      tables.Anon = own(e.Anon); new e.Anon();
      const N = e.makeNested(); tables[N.name] = own(N); new N();
      const W = e.WithHead(require('tsnn').nn.Module); tables.WithHead = own(W); new W();
    }
    console.log(JSON.stringify({ tables, logCalls: require('./${outDir}/log.js').logCalls }));
  `;
}

/** A tsnn decorator still referenced in emitted JS. */
const LEFTOVER = /\b(?:tsnn(?:_\d+)?|reexport_\d+)\.(?:child|param|buffer|weight|sub)\b/;

describe('tsnn transformer (bin/ttsc.js)', function () {
  this.timeout(120_000);

  let ws: string;
  const runs: Record<string, Result> = {};

  before(async function () {
    await ensureTransformerBuilt();
    ws = makeWorkspace(['ok', 'errors']);
    const ok = path.join(ws, 'ok');
    const errors = path.join(ws, 'errors');
    // A project listing our transformer itself: ttsc must not add it a second time.
    fs.writeFileSync(
      path.join(ok, 'tsconfig.plugin.json'),
      JSON.stringify({ extends: './tsconfig.standard.json', compilerOptions: { outDir: 'out-plugin', plugins: [{ transform: TRANSFORMER }] } }),
    );
    // A project with an ordinary type error only.
    fs.mkdirSync(path.join(ws, 'typeerror/src'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'typeerror/src/a.ts'), "export const n: number = 'one';\n");
    fs.writeFileSync(path.join(ws, 'typeerror/src/b.ts'), 'export const f = (x: number) => x;\n');
    fs.writeFileSync(
      path.join(ws, 'typeerror/tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', outDir: 'out', lib: ['ES2022'], types: [], strict: true }, include: ['src/a.ts'] }),
    );

    const jobs: Record<string, () => Promise<Result>> = {
      okStandard: () => ttsc(ok, '-p', 'tsconfig.standard.json'),
      okLegacy: () => ttsc(ok, '-p', 'tsconfig.legacy.json'),
      okTsc: () => tsc(ok, '-p', 'tsconfig.standard.json', '--outDir', 'out-tsc'),
      okTscLegacy: () => tsc(ok, '-p', 'tsconfig.legacy.json', '--outDir', 'out-tsc-legacy'),
      okPlugin: () => ttsc(ok, '-p', 'tsconfig.plugin.json'),
      errStandard: () => ttsc(errors, '-p', 'tsconfig.standard.json', '--pretty'),
      errLegacy: () => ttsc(errors, '-p', 'tsconfig.legacy.json', '--pretty', 'false'),
      errNoEmit: () => ttsc(errors, '-p', 'tsconfig.standard.json', '--noEmit'),
      typeErrTtsc: () => ttsc(path.join(ws, 'typeerror'), '-p', '.'),
      typeErrTsc: () => tsc(path.join(ws, 'typeerror'), '-p', '.', '--outDir', 'out-tsc'),
      version: () => ttsc(ws, '--version'),
      // files on the command line: tsc ignores tsconfig.json (its target ES2022 must not apply)
      filesTtsc: () => ttsc(path.join(ws, 'typeerror'), 'src/b.ts', '--outDir', 'out-files-ttsc', '--lib', 'ES2022'),
      filesTsc: () => tsc(path.join(ws, 'typeerror'), 'src/b.ts', '--outDir', 'out-files-tsc', '--lib', 'ES2022'),
    };
    // A few at a time: each is a whole tsc run.
    const queue = Object.entries(jobs);
    const workers = Math.max(2, Math.min(4, os.cpus().length));
    await Promise.all(
      Array.from({ length: workers }, async () => {
        for (let job = queue.shift(); job; job = queue.shift()) runs[job[0]] = await job[1]();
      }),
    );
    if (process.env.TTSC_DEBUG) for (const [k, r] of Object.entries(runs)) console.log(k, r.status, JSON.stringify(r.output.slice(0, 400)));
  });

  after(() => {
    if (ws && !process.env.TSNN_KEEP_TTSC_WORKSPACE) fs.rmSync(ws, { recursive: true, force: true });
  });

  const read = (rel: string) => fs.readFileSync(path.join(ws, rel), 'utf8');

  for (const flavour of ['standard', 'legacy'] as const) {
    describe(flavour === 'standard' ? 'standard decorators' : 'experimentalDecorators', () => {
      const run = () => runs[flavour === 'standard' ? 'okStandard' : 'okLegacy'];
      const outDir = `out-${flavour}`;
      let inspected: { tables: Record<string, Entry[] | null>; logCalls: string[] };

      before(async () => {
        const r = await runNode(['-e', inspectScript(outDir, flavour === 'standard')], path.join(ws, 'ok'));
        expect(r.status, r.output).to.equal(0);
        inspected = JSON.parse(r.output);
      });

      it('compiles a clean project with exit code 0 and no output', () => {
        expect(run().output).to.equal('');
        expect(run().status).to.equal(0);
      });

      it('emits the __tsnnFields table of every class, in declaration order', () => {
        const want: Record<string, Entry[] | null> = { ...TABLES, ...(flavour === 'standard' ? EXPRESSION_TABLES : {}) };
        expect(inspected.tables).to.deep.equal(want);
      });

      it('writes the table as a static property in the fixed format', () => {
        const js = read(`ok/${outDir}/models.js`);
        const table = '[{ name: "hidden", kind: "child" }, { name: "out", kind: "child" }]';
        expect(js).to.include(flavour === 'standard' ? `static __tsnnFields = ${table};` : `MLP.__tsnnFields = ${table};`);
        expect(js).to.include('{ name: "scratch", kind: "buffer", persistent: false }');
        expect(js).to.include('{ name: "mask", kind: "buffer", persistent: true }');
      });

      it('removes the tsnn decorators (plain, namespaced, called, aliased, re-exported)', () => {
        const files = ['models.js', ...(flavour === 'standard' ? ['expressions.js'] : [])];
        for (const f of files) expect(read(`ok/${outDir}/${f}`)).to.not.match(LEFTOVER);
        // and the fake decorators, which throw when called, never ran: loading succeeded above
        expect(inspected.tables.MLP).to.have.length(2);
      });

      it('keeps other decorators on properties and classes', () => {
        expect(inspected.logCalls).to.deep.equal(['first', 'note', 'Decorated', 'label', 'Untouched', 'value']);
        const js = read(`ok/${outDir}/models.js`);
        expect(js).to.include('childish');
      });

      it('leaves files without tsnn decorators byte-identical to tsc', () => {
        const tscOut = flavour === 'standard' ? 'out-tsc' : 'out-tsc-legacy';
        expect(runs[flavour === 'standard' ? 'okTsc' : 'okTscLegacy'].status).to.equal(0);
        for (const f of ['plain.js', 'log.js', 'reexport.js']) {
          expect(read(`ok/${outDir}/${f}`), f).to.equal(read(`ok/${tscOut}/${f}`));
        }
        // while files with tsnn decorators do differ
        expect(read(`ok/${outDir}/models.js`)).to.not.equal(read(`ok/${tscOut}/models.js`));
      });
    });
  }

  describe('diagnostics', () => {
    it('exits non-zero (2: outputs generated with errors)', () => {
      expect(runs.errStandard.status).to.equal(2);
      expect(runs.errLegacy.status).to.equal(2);
    });

    for (const expected of EXPECTED_DIAGNOSTICS) {
      const [, code] = / TS(\d+) /.exec(expected)!;
      it(`reports TS${code} at ${expected.split(' ')[0]}`, () => {
        expect(tsnnDiags(runs.errStandard.output)).to.include(expected);
      });
    }

    it('reports exactly those, once each, with standard decorators (--pretty output)', () => {
      expect(runs.errStandard.output).to.match(/\x1b\[/); // really was the pretty format
      expect(tsnnDiags(runs.errStandard.output)).to.deep.equal(EXPECTED_DIAGNOSTICS);
    });

    it('reports the same with experimentalDecorators (plain output)', () => {
      expect(runs.errLegacy.output).to.match(/^src\/errors\.ts\(7,3\): error TS90001: /m);
      expect(tsnnDiags(runs.errLegacy.output)).to.deep.equal(EXPECTED_DIAGNOSTICS);
    });

    it('reports them as errors next to TypeScript’s own', () => {
      const all = parseDiagnostics(runs.errStandard.output);
      expect(all.some((d) => d.code === 1241 && d.file === 'src/misplaced.ts')).to.equal(true);
      expect(runs.errStandard.output).to.match(/error.*TS90001/);
    });

    it('still reports them with --noEmit', () => {
      expect(tsnnDiags(runs.errNoEmit.output)).to.deep.equal(EXPECTED_DIAGNOSTICS);
      expect(runs.errNoEmit.status).to.not.equal(0);
    });

    it('still emits the tables for the valid fields of a project with errors', () => {
      const js = read('errors/out-standard/errors.js');
      expect(js).to.include('static __tsnnFields = [{ name: "out", kind: "child" }];');
      expect(js).to.include('static __tsnnFields = [{ name: "a", kind: "child" }];');
      // the decorators of registered fields are gone; misplaced ones (static, #private, ...) stay
      expect(js).to.not.match(/_(out|notTensor|okArray|unknownPersistence)_decorators/);
      expect(js).to.include('_static_s_decorators = [tsnn_1.child]');
    });
  });

  describe('ttsc command line', () => {
    it('passes tsc arguments through (--version)', () => {
      expect(runs.version.status).to.equal(0);
      expect(runs.version.output).to.match(/^Version 5\.\d+\.\d+/);
    });

    it("has tsc's output and exit code for ordinary type errors", () => {
      expect(runs.typeErrTtsc.status).to.equal(2);
      expect(runs.typeErrTtsc.status).to.equal(runs.typeErrTsc.status);
      expect(runs.typeErrTtsc.output).to.equal(runs.typeErrTsc.output);
      expect(runs.typeErrTtsc.output).to.include('TS2322');
    });

    it('ignores tsconfig.json like tsc when files are given on the command line', () => {
      expect(runs.filesTtsc.output).to.equal('');
      expect(runs.filesTtsc.status).to.equal(0);
      const js = read('typeerror/out-files-ttsc/b.js');
      expect(js).to.include('var f = function (x)');
      expect(js).to.equal(read('typeerror/out-files-tsc/b.js'));
    });

    it('does not add the transformer twice when tsconfig already lists it', () => {
      expect(runs.okPlugin.output).to.equal('');
      expect(runs.okPlugin.status).to.equal(0);
      const js = read('ok/out-plugin/models.js');
      expect(js.match(/__tsnnFields/g)).to.have.length(7); // one per decorated class of models.ts
      expect(js).to.equal(read('ok/out-standard/models.js'));
    });
  });
});
