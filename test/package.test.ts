/** The published package: its type declarations must compile in a user project without @types/node. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
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
});
