/**
 * ttsc and the transformer over the supported compiler range (test/compilers: the lowest and highest
 * TypeScript, each with the ts-patch major that patches it), as a project that installed them would run
 * ttsc: the project's node_modules/typescript and node_modules/ts-patch. And the clear errors for what
 * is outside the range. (The language-service plugin over the same range: plugin.test.ts.)
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compilerRange } from './compilers';
import { EXPECTED_DIAGNOSTICS } from './expected-diagnostics';

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bin/ttsc.js'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

const ROOT = findRepoRoot();
const TTSC = path.join(ROOT, 'bin/ttsc.js');
const FIXTURES = path.join(ROOT, 'test/transformer/fixtures');
const { chooseTypeScript, chooseTsPatch } = require(path.join(ROOT, 'bin/ttsc-typescript.js'));

interface Run {
  status: number | null;
  output: string;
}

function runNode(args: string[], cwd: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  delete env.TSP_COMPILER_TS_PATH;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

/** tsnn diagnostics as `file:line:col TScode message`, from tsc's plain output. */
function tsnnDiagnostics(output: string): string[] {
  return [...output.matchAll(/^(\S+?)\((\d+),(\d+)\): error TS(9\d{4}): (.*)$/gm)].map((m) => `${m[1]}:${m[2]}:${m[3]} TS${m[4]} ${m[5]}`);
}

/** A project with the given packages linked into node_modules (the fake tsnn of the fixtures is copied). */
function project(ws: string, name: string, links: Record<string, string>, fixtures: string[] = []): string {
  const dir = path.join(ws, name);
  fs.cpSync(path.join(FIXTURES, 'lib/tsnn'), path.join(dir, 'node_modules/tsnn'), { recursive: true });
  for (const [pkg, target] of Object.entries(links)) fs.symlinkSync(target, path.join(dir, 'node_modules', pkg), 'junction');
  for (const f of fixtures) fs.cpSync(path.join(FIXTURES, f), path.join(dir, f), { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }));
  return dir;
}

describe('ttsc over the supported TypeScript range', function () {
  this.timeout(240_000);
  const range = compilerRange();
  let ws: string;

  before(() => {
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-range-'));
  });
  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  it('covers TypeScript 5.0 (ts-patch 3) to 6 (ts-patch 4)', () => {
    expect(range.map((c) => [c.version.split('.').slice(0, 2).join('.'), c.tsPatchVersion.split('.')[0]])).to.deep.equal([
      ['5.0', '3'],
      ['6.0', '4'],
    ]);
  });

  for (const c of range) {
    describe(`${c.name}: TypeScript ${c.version} with ts-patch ${c.tsPatchVersion}`, () => {
      const runs: Record<string, Run> = {};
      let dir: string;

      before(async () => {
        dir = project(ws, c.name, { typescript: c.ts, 'ts-patch': c.tsPatch }, ['ok', 'errors']);
        const jobs: Record<string, [string, string[]]> = {
          version: ['.', ['--version']],
          errors: ['errors', ['-p', 'tsconfig.standard.json', '--pretty', 'false']],
          ok: ['ok', ['-p', 'tsconfig.standard.json']],
          okLegacy: ['ok', ['-p', 'tsconfig.legacy.json']],
        };
        await Promise.all(Object.entries(jobs).map(async ([k, [cwd, args]]) => (runs[k] = await runNode([TTSC, ...args], path.join(dir, cwd)))));
      });

      it("runs the project's TypeScript", () => {
        expect(runs.version.output.trim()).to.equal(`Version ${c.version}`);
        expect(runs.version.status).to.equal(0);
      });

      it("reports the transformer's diagnostics, exactly", () => {
        expect(tsnnDiagnostics(runs.errors.output)).to.deep.equal(EXPECTED_DIAGNOSTICS);
        expect(runs.errors.status).to.equal(2);
      });

      for (const [run, outDir] of [
        ['ok', 'out-standard'],
        ['okLegacy', 'out-legacy'],
      ]) {
        it(`compiles a small model (${run === 'ok' ? 'standard decorators' : 'experimentalDecorators'}) with its field table`, async () => {
          expect(runs[run].output).to.equal('');
          expect(runs[run].status).to.equal(0);
          // the fake tsnn's decorators throw if they survived: constructing the model proves they were removed
          const script = `const m = require('./ok/${outDir}/models.js'); new m.MLP(); console.log(JSON.stringify(m.MLP.__tsnnFields));`;
          const r = await runNode(['-e', script], dir);
          expect(r.status, r.output).to.equal(0);
          expect(JSON.parse(r.output)).to.deep.equal([
            { name: 'hidden', kind: 'child' },
            { name: 'out', kind: 'child' },
          ]);
        });
      }
    });
  }

  describe('outside the range: a clear error', () => {
    const [lowest, highest] = range;

    it('TypeScript 6 with only ts-patch 3', () => {
      const dir = project(ws, 'ts6-patch3', { typescript: highest.ts, 'ts-patch': lowest.tsPatch });
      expect(() => chooseTsPatch(highest.version, dir, dir)).to.throw(
        `TypeScript ${highest.version} needs ts-patch 4.x (found ts-patch ${lowest.tsPatchVersion} at ${fs.realpathSync(lowest.tsPatch)}): \`npm install -D ts-patch@4\``,
      );
    });

    it('TypeScript 5 with only ts-patch 4', () => {
      const dir = project(ws, 'ts5-patch4', { typescript: lowest.ts, 'ts-patch': highest.tsPatch });
      expect(() => chooseTsPatch(lowest.version, dir, dir)).to.throw(`TypeScript ${lowest.version} needs ts-patch 3.x`);
    });

    it('picks a matching ts-patch installed under an npm alias beside another', () => {
      const dir = project(ws, 'ts6-alias', { typescript: highest.ts, 'ts-patch': lowest.tsPatch, 'ts-patch-4': highest.tsPatch });
      const pkg = { name: 'p', devDependencies: { typescript: '^6.0.0', 'ts-patch': '^3.3.0', 'ts-patch-4': 'npm:ts-patch@^4' } };
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg));
      expect(chooseTsPatch(highest.version, dir, dir)).to.deep.equal({ dir: fs.realpathSync(highest.tsPatch), version: highest.tsPatchVersion });
    });

    it('TypeScript older than 5.0, through ttsc', async () => {
      const dir = project(ws, 'ts4', {});
      fs.mkdirSync(path.join(dir, 'node_modules/typescript/lib'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'node_modules/typescript/package.json'), JSON.stringify({ name: 'typescript', version: '4.9.5' }));
      fs.writeFileSync(path.join(dir, 'node_modules/typescript/lib/tsc.js'), 'throw new Error("must not run");\n');
      expect(() => chooseTypeScript(dir, dir)).to.throw('ttsc supports TypeScript 5.0 to 6.x');
      const r = await runNode([TTSC, '--version'], dir);
      expect(r.output).to.equal(
        `ttsc: ${path.join(dir, 'node_modules/typescript')} is TypeScript 4.9.5; ttsc supports TypeScript 5.0 to 6.x: \`npm install -D typescript@6 ts-patch@4\` (or typescript@5 ts-patch@3)\n`,
      );
      expect(r.status).to.equal(1);
    });
  });
});
