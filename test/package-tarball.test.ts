/**
 * The package as published: `npm pack`ed once, unpacked into private temp projects (mkdtemp) with its
 * dependencies linked from this checkout (no registry here), as `npm install <tarball>` would lay it out.
 * An ESM TypeScript project (`"type": "module"`, `module: NodeNext`: the "import" condition, index.d.mts)
 * and a CommonJS one (the "require" condition) each compile a small model with `npx ttsc` and with plain
 * `npx tsc` (tsnn's run-time decorator fallback), and run it: forward and backward, the values checked
 * against a reference computed here from the printed weights.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from './helpers';

interface Run {
  status: number | null;
  stdout: string;
  output: string;
}

function run(cmd: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', npm_config_update_notifier: 'false' };
    delete env.TSP_COMPILER_TS_PATH;
    const child = spawn(cmd, args, { cwd, env });
    let stdout = '';
    let output = '';
    child.stdout.on('data', (d) => ((stdout += d), (output += d)));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    // npm's own warnings (about the caller's npm configuration) are not the command's output
    child.on('close', (status) => resolve({ status, stdout, output: output.replace(/^npm warn .*\n/gm, '') }));
  });
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** The model: Linear(3, 2) then ReLU, summed, backward; prints what the test checks. */
const PROGRAM = (esm: boolean) => `import { nn, F, Tensor, child, tensor } from 'tsnn';
${esm ? "import tsnnDefault, * as tsnnNs from 'tsnn';\nimport { createRequire } from 'module';\n" : ''}
class Net extends nn.Module {
  @child fc = new nn.Linear(3, 2);
  forward(x: Tensor): Tensor {
    return F.relu(this.fc(x));
  }
}

const net = new Net();
const x = tensor([[1, -2, 0.5], [0.3, 0.8, -1.5], [-0.7, 0.2, 0.9]], { requiresGrad: true });
const y = net(x);
y.sum().backward();
const values = (t: Tensor | null) => (t ? Array.from(t.dataSync()) : null);
console.log(JSON.stringify({
  names: net.namedParameters().map(([n]) => n),
  fields: (Net as any).__tsnnFields ?? null,
  w: values(net.fc.weight), b: values(net.fc.bias!), x: values(x), y: values(y),
  gw: values(net.fc.weight.grad), gb: values(net.fc.bias!.grad), gx: values(x.grad),
  ${esm ? "sameAsRequire: createRequire(import.meta.url)('tsnn').Tensor === Tensor && tsnnDefault.Tensor === Tensor && tsnnNs.Module === nn.Module," : ''}
}));
`;

/** y = relu(x W^T + b) and the gradients of sum(y), computed here from the printed W, b, x (3x3 · 2x3). */
function reference(w: number[], b: number[], x: number[]) {
  const y: number[] = [];
  const gw = new Array(6).fill(0);
  const gb = [0, 0];
  const gx = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 2; j++) {
      let z = b[j];
      for (let k = 0; k < 3; k++) z += x[i * 3 + k] * w[j * 3 + k];
      y.push(Math.max(0, z));
      if (z > 0) {
        gb[j] += 1;
        for (let k = 0; k < 3; k++) {
          gw[j * 3 + k] += x[i * 3 + k];
          gx[i * 3 + k] += w[j * 3 + k];
        }
      }
    }
  }
  return { y, gw, gb, gx };
}

describe('the packed package (npm pack) in fresh projects', function () {
  this.timeout(600_000);
  const ROOT = repoRoot();
  let ws: string;
  let files: string[];
  let pkg: any;

  before(async function () {
    if (!fs.existsSync(path.join(ROOT, 'dist/esm/index.mjs')) || !fs.existsSync(path.join(ROOT, 'transformer/dist/index.js'))) {
      throw new Error('the package is not built: run `npm run build`');
    }
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-pack-'));
    const packed = await run(npm, ['pack', '--json', '--pack-destination', ws], ROOT);
    expect(packed.status, packed.output).to.equal(0);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')));
    files = info.files.map((f: { path: string }) => f.path);
    // one node_modules above both projects: tsnn unpacked from the tarball, its dependencies and the
    // compilers linked from this checkout, and the bins npm would link
    const nm = path.join(ws, 'node_modules');
    fs.mkdirSync(path.join(nm, 'tsnn'), { recursive: true });
    const untar = await run('tar', ['-xzf', path.join(ws, info.filename), '-C', path.join(nm, 'tsnn'), '--strip-components=1'], ws);
    expect(untar.status, untar.output).to.equal(0);
    pkg = JSON.parse(fs.readFileSync(path.join(nm, 'tsnn/package.json'), 'utf8'));
    for (const dep of [...Object.keys(pkg.dependencies), 'typescript', 'ts-patch', '@types/node']) {
      fs.mkdirSync(path.dirname(path.join(nm, dep)), { recursive: true });
      fs.symlinkSync(path.join(ROOT, 'node_modules', dep), path.join(nm, dep), 'junction');
    }
    fs.mkdirSync(path.join(nm, '.bin'));
    fs.symlinkSync('../tsnn/bin/ttsc.js', path.join(nm, '.bin/ttsc'));
    fs.symlinkSync('../typescript/bin/tsc', path.join(nm, '.bin/tsc'));
  });

  after(() => {
    if (ws && !process.env.TSNN_KEEP_PACK_WORKSPACE) fs.rmSync(ws, { recursive: true, force: true });
  });

  it('ships what package.json points at (main, types, exports, bin), and no sources or tests', () => {
    const targets = (e: unknown): string[] => (typeof e === 'string' ? [e] : Object.values(e as object).flatMap(targets));
    const pointed = [pkg.main, pkg.types, ...Object.values(pkg.bin as object), ...targets(pkg.exports)].map((p: string) => p.replace(/^\.\//, ''));
    expect(pointed).to.include.members(['dist/esm/index.mjs', 'dist/esm/index.d.mts', 'dist/src/index.js', 'plugin/index.js']);
    // a subpath pattern ("./x/*": one '*') must match at least one shipped file
    const matches = (pattern: string, f: string) => {
      const [pre, post] = pattern.split('*');
      return f.length > pre.length + post.length && f.startsWith(pre) && f.endsWith(post);
    };
    const ships = (p: string) => (p.includes('*') ? files.some((f) => matches(p, f)) : files.includes(p));
    expect(pointed.filter((p) => !ships(p))).to.deep.equal([]);
    expect(files).to.include('dist/src/backend/pool-worker-script.js');
    expect(files.filter((f) => /^(src|test|dist\/test|dist\/samples)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).to.deep.equal([]);
    expect(pkg.dependencies).to.not.have.any.keys('typescript', 'ts-patch');
    expect(pkg.peerDependenciesMeta).to.deep.equal({ typescript: { optional: true }, 'ts-patch': { optional: true } });
  });

  for (const kind of ['esm', 'cjs'] as const) {
    describe(kind === 'esm' ? 'ESM project ("type": "module", module NodeNext)' : 'CommonJS project (module NodeNext, no "type")', () => {
      const outputs: Record<string, any> = {};
      let dir: string;

      before(async () => {
        dir = path.join(ws, kind);
        fs.mkdirSync(path.join(dir, 'src'), { recursive: true });
        fs.writeFileSync(
          path.join(dir, 'package.json'),
          JSON.stringify({ name: `app-${kind}`, private: true, type: kind === 'esm' ? 'module' : 'commonjs' }),
        );
        const compilerOptions = {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          types: ['node'],
          rootDir: 'src',
          outDir: 'out',
        };
        fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['src'] }));
        fs.writeFileSync(path.join(dir, 'tsconfig.tsc.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { outDir: 'out-tsc' } }));
        fs.writeFileSync(path.join(dir, 'src/main.ts'), PROGRAM(kind === 'esm'));
        const [ttsc, tsc] = await Promise.all([run(npx, ['ttsc', '-p', '.'], dir), run(npx, ['tsc', '-p', 'tsconfig.tsc.json'], dir)]);
        for (const [name, compiled, out] of [
          ['ttsc', ttsc, 'out'],
          ['tsc', tsc, 'out-tsc'],
        ] as const) {
          expect(compiled.output, `npx ${name}`).to.equal('');
          expect(compiled.status, `npx ${name}`).to.equal(0);
          const r = await run(process.execPath, [path.join(out, 'main.js')], dir);
          expect(r.status, r.output).to.equal(0);
          outputs[name] = JSON.parse(r.stdout);
        }
      });

      for (const compiler of ['ttsc', 'tsc']) {
        it(`compiled with npx ${compiler}: forward and backward give the reference values`, () => {
          const o = outputs[compiler];
          expect(o.names).to.deep.equal(['fc.weight', 'fc.bias']);
          const want = reference(o.w, o.b, o.x);
          expect(want.y.some((v) => v > 0)).to.equal(true); // some units active: the gradients are not all zero
          for (const k of ['y', 'gw', 'gb', 'gx'] as const) {
            expect(o[k], k).to.have.length(want[k].length);
            o[k].forEach((v: number, i: number) => expect(v, `${k}[${i}]`).to.be.closeTo(want[k][i], 1e-5));
          }
          if (kind === 'esm') expect(o.sameAsRequire, 'import and require give the same classes').to.equal(true);
        });
      }

      it('ttsc registered the field at compile time; plain tsc left it to the run-time decorators', () => {
        expect(outputs.ttsc.fields).to.deep.equal([{ name: 'fc', kind: 'child' }]);
        expect(outputs.tsc.fields).to.equal(null);
      });
    });
  }
});
