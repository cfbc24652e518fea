/**
 * ttsc against the real tsnn package (dist/src, as published): the marker tags the transformer relies
 * on (`@tsnnDecorator`, `@tsnnModule`, `@tsnnTensor`) must survive into the .d.ts, and the runtime must
 * read the emitted `__tsnnFields` tables. Skipped when dist/src has not been built.
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

function runNode(args: string[], cwd: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

const MODEL = `import { nn, F, Tensor, child, param, buffer, tensor, rand } from 'tsnn';

export class MLP extends nn.Module {
  @child hidden = new nn.LazyLinear(256);
  @child out = new nn.LazyLinear(10);
  forward(X: Tensor): Tensor { return this.out(F.relu(this.hidden(X))); }
}

export class Scale extends nn.Module {
  @param gain = tensor([1.0]);
  @buffer mask = rand([20, 20]);
  @buffer({ persistent: false }) scratch = rand([2]);
  forward(x: Tensor) { return x.mul(this.gain); }
}
`;

const BAD = `import { nn, Tensor, child, param } from 'tsnn';

export class Bad extends nn.Module {
  lin = new nn.Linear(2, 2);
  @param notTensor = 3;
  @child seq = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(128, 10));
  forward(x: Tensor) { return x; }
}
`;

const INSPECT = (outDir: string) => `
  const m = require('./${outDir}/model.js');
  const s = new m.Scale();
  console.log(JSON.stringify({
    mlp: m.MLP.__tsnnFields,
    scale: m.Scale.__tsnnFields,
    children: new m.MLP().namedChildren().map(([n]) => n),
    state: Object.keys(s.stateDict()),
  }));
`;

describe('tsnn transformer with the real tsnn package', function () {
  this.timeout(120_000);
  let ws: string;

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'dist/src/index.d.ts')) || !fs.existsSync(path.join(ROOT, 'transformer/dist/index.js'))) this.skip();
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-real-'));
    fs.mkdirSync(path.join(ws, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(ws, 'node_modules/tsnn'), 'junction');
    for (const [dir, file, text] of [
      ['ok', 'model.ts', MODEL],
      ['bad', 'bad.ts', BAD],
    ]) {
      fs.mkdirSync(path.join(ws, dir, 'src'), { recursive: true });
      fs.writeFileSync(path.join(ws, dir, 'src', file), text);
    }
    const base = { module: 'commonjs', strict: true, lib: ['ES2022'], types: [], skipLibCheck: true, rootDir: 'src' };
    const write = (dir: string, name: string, opts: object) =>
      fs.writeFileSync(path.join(ws, dir, name), JSON.stringify({ compilerOptions: { ...base, ...opts }, include: ['src'] }));
    write('ok', 'tsconfig.standard.json', { target: 'ES2022', outDir: 'out-standard' });
    write('ok', 'tsconfig.legacy.json', { target: 'ES2020', experimentalDecorators: true, outDir: 'out-legacy' });
    write('bad', 'tsconfig.json', { target: 'ES2022', outDir: 'out' });
  });

  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  const expected = {
    mlp: [
      { name: 'hidden', kind: 'child' },
      { name: 'out', kind: 'child' },
    ],
    scale: [
      { name: 'gain', kind: 'param' },
      { name: 'mask', kind: 'buffer', persistent: true },
      { name: 'scratch', kind: 'buffer', persistent: false },
    ],
    children: ['hidden', 'out'],
    state: ['gain', 'mask'],
  };

  for (const flavour of ['standard', 'legacy']) {
    it(`compiles the README example (${flavour} decorators) and the runtime registers the fields`, async () => {
      const dir = path.join(ws, 'ok');
      const c = await runNode([path.join(ROOT, 'bin/ttsc.js'), '-p', `tsconfig.${flavour}.json`], dir);
      expect(c.output).to.equal('');
      expect(c.status).to.equal(0);
      const r = await runNode(['-e', INSPECT(`out-${flavour}`)], dir);
      expect(r.status, r.output).to.equal(0);
      const got = JSON.parse(r.output.trim().split('\n').pop()!);
      expect({ ...got, state: [...got.state].sort() }).to.deep.equal(expected);
    });
  }

  it('reports misuse against the real Module and Tensor classes', async () => {
    const c = await runNode([path.join(ROOT, 'bin/ttsc.js'), '-p', '.'], path.join(ws, 'bad'));
    expect(c.status).to.equal(2);
    expect(c.output).to.include(
      'src/bad.ts(4,3): error TS90001: Bad.lin holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
    );
    expect(c.output).to.include("src/bad.ts(5,3): error TS90002: Bad.notTensor is decorated with @param but its type 'number' is not a Tensor");
    expect(c.output).to.include(
      'src/bad.ts(6,62): error TS90013: nn.Sequential: layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256',
    );
  });
});
