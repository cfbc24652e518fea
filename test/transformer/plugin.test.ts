/**
 * The language-service plugin (`"plugins": [{ "name": "tsnn/plugin" }]`): the transformer's diagnostics
 * in the editor.
 *
 * 1. Through the LanguageService API over in-memory files (the fake tsnn package of the transformer
 *    fixtures, also in memory): the plugin module of the package wraps the service, and a file edit
 *    (a new script version) makes the error appear and disappear.
 * 2. Through a real tsserver session on a project that has the real tsnn at node_modules/tsnn and lists
 *    the plugin in its tsconfig.json: tsserver itself resolves `tsnn/plugin`. Skipped when dist/src has
 *    not been built.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as ts from 'typescript';
import { compilerRange } from './compilers';

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bin/ttsc.js'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

const ROOT = findRepoRoot();
const tsi: typeof ts = require(require.resolve('typescript', { paths: [ROOT] }));
/** The TypeScript tsnn builds with, then the lowest and highest supported (test/compilers). */
const COMPILERS: { name: string; dir: string }[] = [
  { name: `TypeScript ${tsi.version} (tsnn's own)`, dir: path.dirname(require.resolve('typescript/package.json', { paths: [ROOT] })) },
  ...compilerRange().map((c) => ({ name: `TypeScript ${c.version} (${c.name} supported)`, dir: c.ts })),
];
const FAKE_TSNN = path.join(ROOT, 'test/transformer/fixtures/lib/tsnn');

const UNREGISTERED = `import { nn, Tensor, child } from 'tsnn';

export class MLP extends nn.Module {
  hidden = new nn.LazyLinear(256);
  @child out = new nn.LazyLinear(10);
  forward(x: Tensor): Tensor { return x; }
}
`;
const REGISTERED = UNREGISTERED.replace('  hidden =', '  @child hidden =');
const MESSAGE = 'MLP.hidden holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)';

/** A LanguageServiceHost over in-memory files; TypeScript's own lib files are read from disk. */
class MemoryHost implements ts.LanguageServiceHost {
  private readonly files = new Map<string, { text: string; version: number }>();
  constructor(
    private readonly tsi: typeof ts,
    private readonly cwd: string,
    private readonly roots: string[],
  ) {}

  write(file: string, text: string): void {
    this.files.set(file, { text, version: (this.files.get(file)?.version ?? 0) + 1 });
  }
  getScriptFileNames = () => this.roots;
  getScriptVersion = (f: string) => String(this.files.get(f)?.version ?? 0);
  getScriptSnapshot = (f: string) => {
    const text = this.readFile(f);
    return text === undefined ? undefined : this.tsi.ScriptSnapshot.fromString(text);
  };
  getCurrentDirectory = () => this.cwd;
  getCompilationSettings = (): ts.CompilerOptions => ({
    target: this.tsi.ScriptTarget.ES2022,
    module: this.tsi.ModuleKind.CommonJS,
    moduleResolution: this.tsi.ModuleResolutionKind.Node10,
    strict: true,
    lib: ['lib.es2022.d.ts'],
    types: [],
  });
  getDefaultLibFileName = (o: ts.CompilerOptions) => this.tsi.getDefaultLibFilePath(o);
  fileExists = (f: string) => this.files.has(f) || (this.isLib(f) && this.tsi.sys.fileExists(f));
  readFile = (f: string) => this.files.get(f)?.text ?? (this.isLib(f) ? this.tsi.sys.readFile(f) : undefined);
  private isLib = (f: string) => path.dirname(f) === path.dirname(this.tsi.getDefaultLibFilePath({}));
}

describe('tsnn language-service plugin', function () {
  this.timeout(60_000);

  for (const { name, dir } of COMPILERS)
    describe(`through the LanguageService API of ${name}`, () => {
      const tsi: typeof ts = require(dir);
      const project = '/virtual/project';
      const model = `${project}/src/model.ts`;
      let host: MemoryHost;
      let plain: ts.LanguageService;
      let service: ts.LanguageService;

      before(() => {
        host = new MemoryHost(tsi, project, [model]);
        for (const f of ['package.json', 'index.d.ts', 'index.js']) {
          host.write(`${project}/node_modules/tsnn/${f}`, fs.readFileSync(path.join(FAKE_TSNN, f), 'utf8'));
        }
        host.write(model, UNREGISTERED);
        plain = tsi.createLanguageService(host, tsi.createDocumentRegistry());
        // What tsserver does with a plugin: load the module, call it with `typescript`, create() over the service.
        const init = require(path.join(ROOT, 'plugin'));
        const info = { languageService: plain, languageServiceHost: host, config: {} } as unknown as ts.server.PluginCreateInfo;
        service = init({ typescript: tsi }).create(info);
      });

      it('reports the unregistered field with its span and message', () => {
        const text = UNREGISTERED;
        const diags = service.getSemanticDiagnostics(model);
        expect(diags.map((d) => d.code)).to.deep.equal([90001]);
        const d = diags[0];
        expect(d.file?.fileName).to.equal(model);
        expect(d.start).to.equal(text.indexOf('hidden ='));
        expect(d.length).to.equal('hidden'.length);
        expect(tsi.flattenDiagnosticMessageText(d.messageText, '\n')).to.equal(MESSAGE);
        expect(d.category).to.equal(tsi.DiagnosticCategory.Error);
        // The plugin adds it: the service it wraps knows nothing about tsnn.
        expect(plain.getSemanticDiagnostics(model)).to.deep.equal([]);
      });

      it('drops the error once @child is added (new version of the file)', () => {
        host.write(model, REGISTERED);
        expect(service.getSemanticDiagnostics(model)).to.deep.equal([]);
        host.write(model, UNREGISTERED);
        expect(service.getSemanticDiagnostics(model).map((d) => d.start)).to.deep.equal([UNREGISTERED.indexOf('hidden =')]);
      });

      it('leaves the rest of the service working', () => {
        const info = service.getQuickInfoAtPosition(model, UNREGISTERED.indexOf('MLP'));
        expect(tsi.displayPartsToString(info?.displayParts)).to.equal('class MLP');
      });
    });

  describe('in tsserver, resolved as tsnn/plugin from the project', () => {
    let ws: string;

    before(function () {
      if (!fs.existsSync(path.join(ROOT, 'dist/src/index.d.ts')) || !fs.existsSync(path.join(ROOT, 'transformer/dist/plugin.js'))) this.skip();
      ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-plugin-'));
      fs.mkdirSync(path.join(ws, 'node_modules'));
      fs.symlinkSync(ROOT, path.join(ws, 'node_modules/tsnn'), 'junction');
      fs.mkdirSync(path.join(ws, 'src'));
      fs.writeFileSync(
        path.join(ws, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { target: 'ES2022', module: 'commonjs', strict: true, types: [], skipLibCheck: true, plugins: [{ name: 'tsnn/plugin' }] },
          include: ['src'],
        }),
      );
      fs.writeFileSync(
        path.join(ws, 'src/model.ts'),
        `import { nn, Tensor, child } from 'tsnn';

export class MLP extends nn.Module {
  hidden = new nn.Linear(784, 256);
  @child out = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(128, 10));
  forward(x: Tensor): Tensor { return this.out(x); }
}
`,
      );
    });

    after(() => {
      if (ws) fs.rmSync(ws, { recursive: true, force: true });
    });

    // tsserver loads a plugin named with a package subpath (`tsnn/plugin`) from TypeScript 5.5 on
    // (microsoft/TypeScript#57266); older ones skip it ("only package name is allowed plugin name").
    const subpathPlugins = (dir: string) => {
      const [major, minor] = require(path.join(dir, 'package.json')).version.split('.').map(Number);
      return major > 5 || (major === 5 && minor >= 5);
    };
    for (const { name, dir } of COMPILERS.filter((c) => subpathPlugins(c.dir))) {
      it(`reports the tsnn diagnostics of an open file (tsserver of ${name})`, async () => {
        const file = path.join(ws, 'src/model.ts');
        const body = await tsserverDiagnostics(path.join(dir, 'lib/tsserver.js'), ws, file);
        expect(body.map((d) => `${d.start.line}:${d.start.offset}-${d.end.line}:${d.end.offset} TS${d.code} ${d.text}`)).to.deep.equal([
          `4:3-4:9 TS90001 MLP.hidden holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)`,
          '5:62-5:80 TS90013 nn.Sequential: layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256',
        ]);
      });
    }

    it('ttsc reports the same at build time, with the plugin entry in tsconfig.json', async () => {
      const out = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'bin/ttsc.js'), '-p', '.', '--noEmit'], {
          cwd: ws,
          env: { ...process.env, NO_COLOR: '1' },
        });
        let output = '';
        child.stdout.on('data', (d) => (output += d));
        child.stderr.on('data', (d) => (output += d));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, output }));
      });
      expect(out.output.trim().split('\n')).to.deep.equal([
        'src/model.ts(4,3): error TS90001: MLP.hidden holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
        'src/model.ts(5,62): error TS90013: nn.Sequential: layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256',
      ]);
      expect(out.status).to.equal(2);
    });
  });
});

interface ServerDiagnostic {
  start: { line: number; offset: number };
  end: { line: number; offset: number };
  text: string;
  code: number;
}

/**
 * Opens `file` in tsserver (`server`: a TypeScript's lib/tsserver.js) and asks for its semantic diagnostics.
 * `--pluginProbeLocations` stands in for where editors start tsserver from: the project's own
 * node_modules/typescript, whose ../../.. is the project.
 */
function tsserverDiagnostics(server: string, project: string, file: string): Promise<ServerDiagnostic[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [server, '--pluginProbeLocations', project, '--disableAutomaticTypingAcquisition'], { cwd: project });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`tsserver gave no diagnostics:\n${out}\n${err}`));
    }, 50_000);
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d) => {
      out += d;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        const msg = JSON.parse(line);
        if (msg.type === 'response' && msg.request_seq === 2) {
          clearTimeout(timer);
          child.stdin.end(JSON.stringify({ seq: 3, type: 'request', command: 'exit' }) + '\n');
          if (msg.success) resolve(msg.body);
          else reject(new Error(msg.message));
        }
      }
    });
    child.on('error', reject);
    const send = (seq: number, command: string, args: object) =>
      child.stdin.write(JSON.stringify({ seq, type: 'request', command, arguments: args }) + '\n');
    send(1, 'open', { file, projectRootPath: project });
    send(2, 'semanticDiagnosticsSync', { file });
  });
}
