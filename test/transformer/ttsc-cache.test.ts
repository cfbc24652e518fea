/**
 * ttsc's start-up cache (bin/ttsc-cache.js) executes what it reads, so nothing another user can write
 * may ever be read. Each case plants a "cache" whose code writes a marker file and checks whether
 * ttsc ran it. The planted entries have the right name and a valid hash header (an attacker can
 * compute both): the first case proves that such an entry *does* run when it sits where only the user
 * can write, so every refusal below is a refusal of the place, not of a wrong name or format.
 *
 * Each case has its own cache home (XDG_CACHE_HOME), HOME and TMPDIR under one temporary workspace.
 * The cases that chown to another user (uid 65534) need root and are skipped otherwise.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
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
const TTSC = path.join(ROOT, 'bin/ttsc.js');
const TS_DIR = path.dirname(require.resolve('typescript/package.json', { paths: [ROOT] }));
const TS_VERSION: string = JSON.parse(fs.readFileSync(path.join(TS_DIR, 'package.json'), 'utf8')).version;
const OTHER_UID = 65534; // nobody
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const UID = typeof process.getuid === 'function' ? process.getuid() : 'u';

/** The entry name ttsc derives from TypeScript, ts-patch and Node (as bin/ttsc.js's cacheKey does). */
function cacheKey(): string {
  const tscPath = path.join(TS_DIR, 'lib', 'tsc.js');
  const tsPatchDir = path.dirname(require.resolve('ts-patch/package.json', { paths: [path.join(ROOT, 'bin')] }));
  const st = fs.statSync(tscPath);
  const parts = [
    1,
    fs.readFileSync(path.join(TS_DIR, 'package.json'), 'utf8'),
    fs.readFileSync(path.join(tsPatchDir, 'package.json'), 'utf8'),
    tscPath,
    st.size,
    st.mtimeMs,
    process.version,
    process.arch,
  ];
  return crypto.createHash('sha1').update(JSON.stringify(parts)).digest('hex').slice(0, 20);
}

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

/** A cache entry in ttsc's format: a line comment with the SHA-256 of the body, then the body. */
const encodeSource = (body: string) => `// tsnn-ttsc-cache sha256:${sha256(body)}\n${body}`;

/** Code that writes `marker` and would pass ttsc's (old) "is this our patched tsc" test. */
const payload = (marker: string) => `require('fs').writeFileSync(${JSON.stringify(marker)}, 'planted code ran');\n// __tsnnInstall(tsp);\n`;

interface Run {
  status: number | null;
  output: string;
}

function ttsc(env: Record<string, string>, cwd: string, ...args: string[]): Promise<Run> {
  const base: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
  delete base.TSNN_TTSC_NO_CACHE;
  delete base.TSP_SKIP_CACHE;
  delete base.TSNN_TTSC_DEBUG;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TTSC, ...args], { cwd, env: { ...base, ...env } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

const modeOf = (p: string) => fs.lstatSync(p).mode & 0o7777;
const listing = (dir: string) => fs.readdirSync(dir).sort();

describe('ttsc start-up cache: never runs what another user could have written', function () {
  this.timeout(180_000);
  let ws: string;
  let key: string;
  let n = 0;

  /** A fresh case: its own cache home, HOME, TMPDIR and marker path, and the env ttsc runs with. */
  function newCase() {
    const dir = path.join(ws, `case${n++}`);
    const c = {
      dir,
      cacheHome: path.join(dir, 'cache'),
      tmp: path.join(dir, 'tmp'),
      marker: path.join(dir, 'MARKER'),
      /** where ttsc keeps its entries */
      entries: path.join(dir, 'cache', 'tsnn', 'ttsc'),
      env: {} as Record<string, string>,
    };
    for (const d of [dir, c.cacheHome, c.tmp, path.join(dir, 'home')]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    c.env = { XDG_CACHE_HOME: c.cacheHome, HOME: path.join(dir, 'home'), TMPDIR: c.tmp, TSNN_TTSC_DEBUG: '1' };
    return c;
  }

  /** `ttsc --version` runs the (cached) patched tsc without compiling anything: enough to run a plant. */
  async function version(env: Record<string, string>): Promise<Run> {
    return ttsc(env, ws, '--version');
  }

  /** ttsc must have done without the planted entry and still worked. */
  function expectNotRun(r: Run, marker: string, reason?: string) {
    expect(fs.existsSync(marker), `planted code ran:\n${r.output}`).to.equal(false);
    expect(r.status, r.output).to.equal(0);
    expect(r.output).to.include(`Version ${TS_VERSION}`);
    if (reason) expect(r.output).to.include(reason);
  }

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'transformer/dist/index.js'))) this.skip();
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-cache-'));
    fs.mkdirSync(path.join(ws, 'p/src'), { recursive: true });
    fs.writeFileSync(path.join(ws, 'p/src/a.ts'), 'export const answer: number = 6 * 7;\n');
    const compilerOptions = { module: 'commonjs', target: 'ES2022', strict: true, lib: ['ES2022'], types: [], rootDir: 'src', outDir: 'out' };
    fs.writeFileSync(path.join(ws, 'p/tsconfig.json'), JSON.stringify({ compilerOptions, include: ['src'] }));
    key = cacheKey();
  });

  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  it('keeps its cache in a private directory (0700, files 0600) and uses it on the next run', async () => {
    const c = newCase();
    const quiet = { ...c.env, TSNN_TTSC_DEBUG: '' };
    const project = path.join(ws, 'p');
    const first = await ttsc(quiet, project, '-p', '.');
    expect(first.output).to.equal('');
    expect(first.status).to.equal(0);
    const emitted = fs.readFileSync(path.join(project, 'out/a.js'), 'utf8');
    expect(emitted).to.include('exports.answer = 6 * 7;');

    for (const d of [path.join(c.cacheHome, 'tsnn'), c.entries]) {
      expect(modeOf(d).toString(8), d).to.equal('700');
      expect(fs.lstatSync(d).uid).to.equal(UID);
    }
    expect(listing(c.entries)).to.deep.equal([`${key}.js`, `${key}.v8`]);
    for (const f of listing(c.entries)) expect(modeOf(path.join(c.entries, f)).toString(8), f).to.equal('600');
    expect(fs.readdirSync(c.tmp)).to.deep.equal([]); // nothing in the shared temp directory

    fs.rmSync(path.join(project, 'out'), { recursive: true });
    const second = await ttsc(c.env, project, '-p', '.');
    expect(second.status, second.output).to.equal(0);
    expect(second.output).to.include(`ttsc: cache: read ${path.join(c.entries, `${key}.js`)}`);
    expect(second.output).to.include(`ttsc: cache: read ${path.join(c.entries, `${key}.v8`)}`);
    expect(second.output).not.to.include('wrote');
    expect(fs.readFileSync(path.join(project, 'out/a.js'), 'utf8')).to.equal(emitted);
  });

  it('control: an entry where only the user can write is run (so the refusals below are about the place)', async () => {
    const c = newCase();
    fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(c.entries, `${key}.js`), encodeSource(payload(c.marker)), { mode: 0o600 });
    const r = await version(c.env);
    expect(fs.existsSync(c.marker), r.output).to.equal(true);
  });

  it('never looks in the shared temp directory, where another user could create its old cache first', async () => {
    const c = newCase();
    const planted = path.join(c.tmp, `tsnn-ttsc-${UID}`); // the old, predictable location
    fs.mkdirSync(planted);
    fs.writeFileSync(path.join(planted, `${key}.js`), encodeSource(payload(c.marker)));
    fs.chmodSync(planted, 0o777);
    if (IS_ROOT) {
      fs.chownSync(planted, OTHER_UID, OTHER_UID);
      fs.chownSync(path.join(planted, `${key}.js`), OTHER_UID, OTHER_UID);
    }
    const r = await version(c.env);
    expectNotRun(r, c.marker, `ttsc: cache: wrote ${path.join(c.entries, `${key}.js`)}`);
    expect(listing(planted)).to.deep.equal([`${key}.js`]);
  });

  it('refuses a cache directory owned by another user (mode 777), and writes nothing into it', async function () {
    if (!IS_ROOT) this.skip();
    const c = newCase();
    fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(c.entries, `${key}.js`), encodeSource(payload(c.marker)));
    fs.chownSync(path.join(c.entries, `${key}.js`), OTHER_UID, OTHER_UID);
    fs.chownSync(c.entries, OTHER_UID, OTHER_UID);
    fs.chmodSync(c.entries, 0o777);
    const r = await version(c.env);
    expectNotRun(r, c.marker, `${c.entries} is owned by uid ${OTHER_UID}`);
    expect(listing(c.entries)).to.deep.equal([`${key}.js`]);
  });

  it('refuses a cache directory of its own that group or others can write', async () => {
    const c = newCase();
    fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(c.entries, `${key}.js`), encodeSource(payload(c.marker)), { mode: 0o600 });
    fs.chmodSync(c.entries, 0o777);
    const r = await version(c.env);
    expectNotRun(r, c.marker, `${c.entries} is writable by group or others (mode 0777)`);
  });

  it('refuses a cache file owned by another user, or one that others can write', async function () {
    const cases: [number | undefined, number, string][] = [
      [undefined, 0o666, 'is writable by group or others (mode 0666)'],
      [undefined, 0o620, 'is writable by group or others (mode 0620)'],
    ];
    if (IS_ROOT) cases.push([OTHER_UID, 0o600, `is owned by uid ${OTHER_UID}`]);
    for (const [owner, mode, reason] of cases) {
      const c = newCase();
      fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
      const file = path.join(c.entries, `${key}.js`);
      fs.writeFileSync(file, encodeSource(payload(c.marker)));
      fs.chmodSync(file, mode);
      if (owner !== undefined) fs.chownSync(file, owner, owner);
      const r = await version(c.env);
      expectNotRun(r, c.marker, `${file} ${reason}`);
      // Replaced by a good entry of the user's own (a rename: the planted inode is not written to).
      expect(fs.lstatSync(file).uid).to.equal(UID);
      expect(modeOf(file)).to.equal(0o600);
      expect(fs.readFileSync(file, 'utf8')).not.to.include(c.marker);
    }
  });

  it('refuses symbolic links: the cache directory, its parent, or an entry', async () => {
    const links = ['tsnn/ttsc', 'tsnn', `tsnn/ttsc/${key}.js`];
    for (const link of links) {
      const c = newCase();
      // The attacker's directory, with a well-formed entry, owned by this user so only the link is wrong.
      const elsewhere = path.join(c.dir, 'elsewhere');
      fs.mkdirSync(path.join(elsewhere, 'ttsc'), { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(elsewhere, 'ttsc', `${key}.js`), encodeSource(payload(c.marker)), { mode: 0o600 });
      const at = path.join(c.cacheHome, link);
      fs.mkdirSync(path.dirname(at), { recursive: true, mode: 0o700 });
      const target = link === 'tsnn' ? elsewhere : link === 'tsnn/ttsc' ? path.join(elsewhere, 'ttsc') : path.join(elsewhere, 'ttsc', `${key}.js`);
      fs.symlinkSync(target, at);
      const r = await version(c.env);
      expectNotRun(r, c.marker, `${at} is a symbolic link`);
    }
  });

  it('refuses a cache home that others can write (without the sticky bit)', async () => {
    const c = newCase();
    fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(c.entries, `${key}.js`), encodeSource(payload(c.marker)), { mode: 0o600 });
    fs.chmodSync(c.cacheHome, 0o777);
    const r = await version(c.env);
    expectNotRun(r, c.marker, `${c.cacheHome} is writable by group or others (mode 0777)`);
  });

  it('does not run an entry whose content does not match its hash, and replaces it', async () => {
    const c = newCase();
    fs.mkdirSync(c.entries, { recursive: true, mode: 0o700 });
    const file = path.join(c.entries, `${key}.js`);
    fs.writeFileSync(file, `// tsnn-ttsc-cache sha256:${sha256('something else')}\n${payload(c.marker)}`, { mode: 0o600 });
    const r = await version(c.env);
    expectNotRun(r, c.marker, `ignored ${file}: its content does not match its hash`);
    expect(fs.readFileSync(file, 'utf8')).to.include('__tsnnInstall(tsp);');
    expect(fs.readFileSync(file, 'utf8')).not.to.include(c.marker);
  });

  it("never runs ts-patch's own cache of patched compilers", async () => {
    // ts-patch caches its patched tsc in node_modules/.cache/ts-patch or, where node_modules is not
    // writable (a global install), in <tmpdir>/ts-patch, and runs what it finds there. As root every
    // node_modules is writable, so TSP_CACHE_DIR points ts-patch at such a planted directory instead.
    const c = newCase();
    const shared = path.join(c.tmp, 'ts-patch');
    const tsPatch = require.resolve('ts-patch', { paths: [path.join(ROOT, 'bin')] });
    // Let ts-patch fill it as it would, then replace its patched tsc.js with the plant.
    const fill = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(tsPatch)}).getLiveModule('tsc.js')`], {
      env: { ...process.env, TSP_CACHE_DIR: shared, TSP_SKIP_CACHE: '' },
    });
    expect(fill.status, String(fill.stderr)).to.equal(0);
    const files = (fs.readdirSync(shared, { recursive: true }) as string[]).map((f) => path.join(shared, f));
    const patched = files.filter((f) => path.basename(f) === 'patched.tsc.js');
    expect(patched).to.have.length(1);
    fs.writeFileSync(patched[0], `${payload(c.marker)}var tsp = {};\ntsp.currentLibrary = 'tsc';\n`);
    for (const f of [shared, ...files]) {
      if (fs.statSync(f).isDirectory()) fs.chmodSync(f, 0o777);
      if (IS_ROOT) fs.chownSync(f, OTHER_UID, OTHER_UID);
    }
    const r = await version({ ...c.env, TSNN_TTSC_NO_CACHE: '1', TSP_CACHE_DIR: shared });
    expectNotRun(r, c.marker);
  });

  it('uses a V8 code cache only with the source it was made from (V8 itself checks only the length)', async () => {
    const c = newCase();
    const first = await version({ ...c.env, TSNN_TTSC_DEBUG: '' });
    expect(first.status, first.output).to.equal(0);
    const sourceFile = path.join(c.entries, `${key}.js`);
    const codeFile = path.join(c.entries, `${key}.v8`);
    const text = fs.readFileSync(sourceFile, 'utf8');
    const source = text.slice(text.indexOf('\n') + 1);

    // Bytecode of a different program of exactly the same length, as ttsc wraps its source.
    const wrap = (s: string) => `(function (exports, require, module, __filename, __dirname, __tsnnInstall) {\n${s}\n});`;
    const evil = payload(c.marker);
    const forgedSource = evil + ' '.repeat(source.length - evil.length);
    // Made in a fresh node process: V8 rejects a cache made under other V8 flags (this mocha process may
    // have changed its own, e.g. --expose-gc in the memory tests). Running the function first compiles its
    // body into the cache (and writes the marker, there).
    const forgedFile = path.join(c.entries, 'forged.v8');
    const make = spawnSync(
      process.execPath,
      [
        '-e',
        `
      const vm = require('vm'), fs = require('fs');
      const script = new vm.Script(fs.readFileSync(0, 'utf8'), { filename: ${JSON.stringify(path.join(TS_DIR, 'lib', 'tsc.js'))} });
      script.runInThisContext().call({}, {}, require, {}, '', '', () => {});
      fs.writeFileSync(${JSON.stringify(forgedFile)}, script.createCachedData());
    `,
      ],
      { input: wrap(forgedSource), encoding: 'utf8' },
    );
    expect(make.status, make.stderr).to.equal(0);
    fs.rmSync(c.marker);
    const data = fs.readFileSync(forgedFile);
    fs.rmSync(forgedFile);
    const plant = (header: string) => fs.writeFileSync(codeFile, Buffer.concat([Buffer.from(header), data]), { mode: 0o600 });

    // Labelled as made from the forged source: refused.
    plant(`tsnn-ttsc-v8 source:${sha256(forgedSource)} data:${sha256(data)}\n`);
    const refused = await version(c.env);
    expectNotRun(refused, c.marker, `ignored ${codeFile}: not made from this source, or damaged`);

    // Control: labelled (falsely) as made from ttsc's source, V8 takes it and runs the forged code.
    // Only the directory checks keep such a file out; the label guards against stale or damaged caches.
    plant(`tsnn-ttsc-v8 source:${sha256(source)} data:${sha256(data)}\n`);
    const taken = await version(c.env);
    expect(fs.existsSync(c.marker), taken.output).to.equal(true);
  });
});
