/** The published package: its type declarations must compile in a user project without @types/node. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { pathToFileURL } from 'url';
import { repoRoot } from './helpers';

function declarations(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? declarations(p) : p.endsWith('.d.ts') ? [p] : [];
  });
}

describe('package', () => {
  it('type declarations import no Node built-in modules (users need no @types/node)', () => {
    const offenders: string[] = [];
    const files = declarations(path.join(repoRoot(), 'dist/src'));
    // no declarations built would leave nothing to check
    expect(files.map((f) => path.relative(repoRoot(), f))).to.include(path.join('dist', 'src', 'index.d.ts'));
    for (const file of files) {
      const text = fs.readFileSync(file, 'utf8');
      const m = text.match(/from ['"](node:)?(fs|path|util|os|worker_threads|child_process|buffer|events|stream)['"]|NodeJS\.|\bBuffer\b(?!<)/);
      if (m) offenders.push(`${path.relative(repoRoot(), file)}: ${m[0]}`);
    }
    expect(offenders).to.deep.equal([]);
  });

  it('package.json ships the library, its types, the transformer and ttsc', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8'));
    expect(pkg.main).to.equal('dist/src/index.js');
    expect(pkg.types).to.equal('dist/src/index.d.ts');
    expect(pkg.bin.ttsc).to.equal('bin/ttsc.js');
    expect(pkg.files).to.include.members(['dist/src', 'transformer/dist', 'bin']);
    for (const f of [pkg.main, pkg.types, pkg.bin.ttsc, 'transformer/dist/index.js'])
      expect(fs.existsSync(path.join(repoRoot(), f)), f).to.equal(true);
  });

  it('exports map: import and require entries with their own types, the plugin, the transformer', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8'));
    const dot = pkg.exports['.'];
    expect(dot.import).to.deep.equal({ types: './dist/esm/index.d.mts', default: './dist/esm/index.mjs' });
    expect(dot.require).to.deep.equal({ types: './dist/src/index.d.ts', default: './dist/src/index.js' });
    expect(pkg.exports['./plugin']).to.equal('./plugin/index.js');
    expect(pkg.exports['./transformer/dist/index.js']).to.equal('./transformer/dist/index.js'); // the tsconfig entry transformer/README.md shows
    expect(pkg.files).to.include('dist/esm');
  });

  it('the ESM entry re-exports every name of the CommonJS build, as the very same objects', function () {
    this.timeout(120_000); // a child node loading the library
    const esm = pathToFileURL(path.join(repoRoot(), 'dist/esm/index.mjs')).href;
    const cjs = pathToFileURL(path.join(repoRoot(), 'dist/src/index.js')).href;
    const script = `import * as esm from '${esm}'; import cjs from '${cjs}';
      const names = Object.keys(cjs).filter((n) => n !== '__esModule');
      console.log(JSON.stringify({ count: names.length, differ: names.filter((n) => esm[n] !== cjs[n]),
        extra: Object.keys(esm).filter((n) => n !== 'default' && !(n in cjs)), defaultIsCjs: esm.default === cjs }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    expect(out.count).to.be.greaterThan(50);
    expect(out).to.deep.include({ differ: [], extra: [], defaultIsCjs: true });
  });
});
