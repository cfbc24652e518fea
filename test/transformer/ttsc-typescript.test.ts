/**
 * ttsc compiles with the project's TypeScript (bin/ttsc-typescript.js), as `npx tsc` would, and says
 * what to do where that is TypeScript 7 (the native compiler, without a JavaScript API).
 *
 * Without other TypeScript versions at hand, "the project's TypeScript" is a copy of tsnn's whose
 * compiler reports version `<version>-project` (only `_tsc.js` and `typescript.js` are copied, the
 * rest of lib/ is linked), and "TypeScript 7" a package.json saying 7.0.0 whose main module exports
 * nothing, as the native compiler's package has no JavaScript API.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bin/ttsc.js'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

const ROOT = findRepoRoot();
const TS_DIR = path.dirname(require.resolve('typescript/package.json', { paths: [ROOT] }));
const TS_VERSION: string = JSON.parse(fs.readFileSync(path.join(TS_DIR, 'package.json'), 'utf8')).version;
const MARKED = `${TS_VERSION}-project`;

interface Run {
  status: number | null;
  output: string;
}

function runNode(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', TSNN_TTSC_NO_CACHE: '1' };
  delete base.TSP_COMPILER_TS_PATH;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...base, ...env } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

/** tsnn's TypeScript at `dir`, its compiler reporting version MARKED. */
function markedTypeScript(dir: string): void {
  fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
  fs.copyFileSync(path.join(TS_DIR, 'package.json'), path.join(dir, 'package.json'));
  const marked = ['_tsc.js', 'typescript.js']; // ts-patch builds its tsc from both
  for (const f of fs.readdirSync(path.join(TS_DIR, 'lib'))) {
    if (!marked.includes(f)) fs.symlinkSync(path.join(TS_DIR, 'lib', f), path.join(dir, 'lib', f));
  }
  const declaration = `var version = "${TS_VERSION}";`;
  for (const f of marked) {
    const text = fs.readFileSync(path.join(TS_DIR, 'lib', f), 'utf8');
    expect(text, f).to.include(declaration);
    fs.writeFileSync(path.join(dir, 'lib', f), text.replace(declaration, `var version = "${MARKED}";`));
  }
}

/** A TypeScript 7 package: no JavaScript API (a module that exports nothing), no lib/tsc.js. */
function typeScript7(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'typescript', version: '7.0.0', main: 'index.js' }));
  fs.writeFileSync(path.join(dir, 'index.js'), 'module.exports = {};\n');
}

const NO_JS_API = 'is TypeScript 7.0.0, the native compiler, which has no JavaScript API';

describe("ttsc compiles with the project's TypeScript", function () {
  this.timeout(180_000);
  let ws: string;

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'transformer/dist/index.js'))) this.skip();
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-ts-'));
  });

  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  it("uses the project's typescript, not the one installed with tsnn", async () => {
    const project = path.join(ws, 'own');
    markedTypeScript(path.join(project, 'node_modules/typescript'));
    fs.mkdirSync(path.join(project, 'src'));
    fs.writeFileSync(path.join(project, 'src/a.ts'), 'export const answer: number = 6 * 7;\n');
    const compilerOptions = { module: 'commonjs', target: 'ES2022', strict: true, lib: ['ES2022'], types: [], rootDir: 'src', outDir: 'out' };
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['src'] }));

    const version = await runNode([path.join(ROOT, 'bin/ttsc.js'), '--version'], project);
    expect(version.output.trim()).to.equal(`Version ${MARKED}`);
    const build = await runNode([path.join(ROOT, 'bin/ttsc.js'), '-p', '.'], project);
    expect(build.output).to.equal('');
    expect(build.status).to.equal(0);
    expect(fs.readFileSync(path.join(project, 'out/a.js'), 'utf8')).to.include('exports.answer = 6 * 7;');
  });

  it('says what to do when the project has TypeScript 7', async () => {
    const project = path.join(ws, 'ts7');
    typeScript7(path.join(project, 'node_modules/typescript'));
    const r = await runNode([path.join(ROOT, 'bin/ttsc.js'), '--version'], project);
    expect(r.status).to.equal(1);
    expect(r.output).to.include(`ttsc: ${path.join(project, 'node_modules/typescript')} ${NO_JS_API}`);
    expect(r.output).to.include('npm install -D typescript-6@npm:typescript@6');
    expect(r.output).to.include('or compile with plain tsc');
  });

  it('uses a TypeScript 6 installed beside TypeScript 7 under an npm alias, also for a hoisted ts-patch', async () => {
    // A hoisted install: tsnn, ts-patch and the rest side by side in the project's node_modules, where
    // ts-patch's own require('typescript') finds TypeScript 7 (and would crash on it). Links stand in
    // for installed packages, so node runs with --preserve-symlinks to resolve as in a real install.
    const project = path.join(ws, 'hoisted');
    const nm = path.join(project, 'node_modules');
    fs.mkdirSync(nm, { recursive: true });
    const skip = new Set(['typescript', 'tsnn', '.bin', '.cache', '.package-lock.json']);
    for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (!skip.has(name)) fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(nm, name));
    }
    fs.mkdirSync(path.join(nm, 'tsnn'));
    for (const f of ['package.json', 'bin', 'transformer']) fs.symlinkSync(path.join(ROOT, f), path.join(nm, 'tsnn', f));
    typeScript7(path.join(nm, 'typescript'));
    markedTypeScript(path.join(nm, 'typescript-6'));
    const devDependencies = { typescript: '^7.0.0', 'typescript-6': 'npm:typescript@^6.0.0', tsnn: '*' };
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'p', devDependencies }));

    const ttsc = ['--preserve-symlinks', '--preserve-symlinks-main', path.join(nm, 'tsnn/bin/ttsc.js'), '--version'];
    const r = await runNode(ttsc, project);
    expect(r.output.trim()).to.equal(`Version ${MARKED}`);
    expect(r.status).to.equal(0);

    // Without the alias: the TypeScript 7 message, not a crash inside ts-patch.
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'p', devDependencies: { typescript: '^7.0.0' } }));
    const alone = await runNode(ttsc, project);
    expect(alone.status).to.equal(1);
    expect(alone.output).to.include(NO_JS_API);
  });
});
