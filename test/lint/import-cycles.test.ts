/**
 * The import-circle check of eslint.config.mjs (scripts/import-cycles.mjs, rule tsnn/no-import-cycle): it
 * counts type-only imports, which eslint-plugin-import-x's no-cycle skips; src/ has no circle at all.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '../../..');
// tsc compiles `import()` to require() under CommonJS, which cannot load an ES module: keep it a real import()
const importEsm = new Function('p', 'return import(p)') as (p: string) => Promise<any>;
const load = () => importEsm(path.join(root, 'scripts/import-cycles.mjs'));

describe('lint: import circles, type-only imports included', () => {
  it('finds a circle made of type-only imports, and one through a re-export', async () => {
    const { importGraph, importCycles } = await load();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-cycles-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b';\nexport interface A { b: B }\n");
      fs.writeFileSync(path.join(dir, 'b.ts'), "import type { A } from './a';\nexport interface B { a: A }\n");
      fs.mkdirSync(path.join(dir, 'sub'));
      fs.writeFileSync(path.join(dir, 'sub/index.ts'), "export { C } from '../c';\n");
      fs.writeFileSync(path.join(dir, 'c.ts'), "import type { D } from './sub';\nexport type C = number;\nexport type E = D;\n");
      fs.writeFileSync(path.join(dir, 'leaf.ts'), "import type { A } from './a';\nexport type L = A;\n");
      const cycles = importCycles(importGraph(dir)).map((c: string[]) => c.map((f) => path.relative(dir, f)).sort());
      expect(cycles.map((c: string[]) => c.join(' ')).sort()).to.deep.equal(['a.ts b.ts', 'c.ts sub/index.ts']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('src/ has none', async () => {
    const { importGraph, importCycles } = await load();
    const graph = importGraph(path.join(root, 'src'));
    expect(graph.size).to.be.greaterThan(100);
    expect(importCycles(graph)).to.deep.equal([]);
  });
});
