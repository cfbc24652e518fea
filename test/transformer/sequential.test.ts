/**
 * Compile-time checks of nn.Sequential against the real tsnn package (dist/src, as published, at
 * node_modules/tsnn): feature sizes along literal chains (TS90013, through the analysis the transformer
 * and the editor plugin share), and that calls of Sequential / ModuleList / ModuleDict members are typed
 * Tensor, not `any`. Skipped when dist/src has not been built.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as ts from 'typescript';

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'bin/ttsc.js'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

const ROOT = findRepoRoot();
const tsi: typeof ts = require(require.resolve('typescript', { paths: [ROOT] }));

const MISMATCHES = `import { nn } from 'tsnn';
const H = 256;
export const newForm = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(128, 10));
export const callForm = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(128, 10));
export const throughAll = nn.Sequential(nn.Linear(784, H), nn.GELU(), nn.Sigmoid(), nn.Tanh(), nn.Dropout(0.1), nn.Identity(), nn.BatchNorm1d(256), nn.LayerNorm(256), nn.Linear(255, 10));
export const layerNorm = nn.Sequential(nn.Linear(10, 20), nn.LayerNorm(21), nn.Linear(20, 5));
export const layerNormShape = nn.Sequential(nn.Linear(10, 20), nn.LayerNorm([4, 21]));
export const record = nn.Sequential({ fc1: nn.Linear(784, 256), act: nn.ReLU(), fc2: nn.Linear(100, 10) });
export const twice = nn.Sequential(nn.Linear(1, 2), nn.Linear(3, 4), nn.Linear(5, 6));
export const restarted = nn.Sequential(nn.LazyLinear(8), nn.Linear(9, 3), nn.ReLU(), nn.Linear(4, 1));
`;

/** [export name, the offending layer as written, message] */
const EXPECTED: [string, string, string][] = [
  ['newForm', 'new nn.Linear(128, 10)', 'layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256'],
  ['callForm', 'nn.Linear(128, 10)', 'layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256'],
  ['throughAll', 'nn.Linear(255, 10)', 'layer 8 (Linear) expects 255 input features but layer 0 (Linear) produces 256'],
  ['layerNorm', 'nn.LayerNorm(21)', 'layer 1 (LayerNorm) expects 21 input features but layer 0 (Linear) produces 20'],
  ['layerNormShape', 'nn.LayerNorm([4, 21])', 'layer 1 (LayerNorm) expects 21 input features but layer 0 (Linear) produces 20'],
  ['record', 'nn.Linear(100, 10)', "layer 'fc2' (Linear) expects 100 input features but layer 'fc1' (Linear) produces 256"],
  ['twice', 'nn.Linear(3, 4)', 'layer 1 (Linear) expects 3 input features but layer 0 (Linear) produces 2'],
  ['twice', 'nn.Linear(5, 6)', 'layer 2 (Linear) expects 5 input features but layer 1 (Linear) produces 4'],
  ['restarted', 'nn.Linear(4, 1)', 'layer 3 (Linear) expects 4 input features but layer 1 (Linear) produces 3'],
];

// Chains the check cannot prove wrong: none of these may be reported.
const UNPROVABLE = `import { nn, Tensor } from 'tsnn';
class Block extends nn.Module { forward(x: Tensor): Tensor { return x; } }
class MyLinear extends nn.Linear { constructor() { super(7, 7); } }
declare const n: number;
const more = [nn.Linear(3, 3)];
const lookalike = { Sequential: (...layers: object[]) => layers, Linear: (i: number, o: number) => ({ i, o }) };
export const fine = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.LayerNorm(256), nn.Linear(256, 10));
export const lazy = nn.Sequential(nn.Linear(784, 256), nn.LazyLinear(128), nn.Linear(128, 10));
export const flatten = nn.Sequential(nn.Linear(784, 256), nn.Flatten(), nn.Linear(128, 10));
export const user = nn.Sequential(nn.Linear(784, 256), new Block(), nn.Linear(128, 10));
export const subclass = nn.Sequential(nn.Linear(784, 256), new MyLinear(), nn.Linear(7, 10));
export const spread = nn.Sequential(nn.Linear(784, 256), ...more, nn.Linear(128, 10));
export const nonLiteralOut = nn.Sequential(nn.Linear(784, n), nn.Linear(128, 10));
export const nonLiteralIn = nn.Sequential(nn.Linear(784, 256), nn.Linear(n, 10));
export const nested = nn.Sequential(nn.Linear(784, 256), nn.Sequential(nn.Linear(3, 4)), nn.Linear(128, 10));
export const batchNormDim1 = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(5), nn.Linear(32, 8));
export const notTsnn = lookalike.Sequential(lookalike.Linear(784, 256), lookalike.Linear(128, 10));
`;

const TYPED = `import { nn, rand } from 'tsnn';
const x = rand([2, 3]);
const list = nn.ModuleList([nn.Linear(3, 3), nn.ReLU()]);
export const sequentialCalled = nn.Sequential(nn.Linear(3, 4), nn.ReLU())(x);
export const sequentialNew = new nn.Sequential(new nn.Linear(3, 4))(x);
export const listAt = list.at(0)(x);
export const listIndex = list[1](x);
export const listLoop = [...list].map((m) => m(x))[0];
export const dictGet = nn.ModuleDict({ a: nn.Linear(3, 3) }).get('a')!(x);
`;

describe('nn.Sequential at compile time (real tsnn package)', function () {
  this.timeout(120_000);
  let ws: string;
  let program: ts.Program;
  const file = (name: string) => path.join(ws, 'src', name);

  before(function () {
    if (!fs.existsSync(path.join(ROOT, 'dist/src/index.d.ts')) || !fs.existsSync(path.join(ROOT, 'transformer/dist/index.js'))) this.skip();
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-sequential-'));
    fs.mkdirSync(path.join(ws, 'node_modules'));
    fs.symlinkSync(ROOT, path.join(ws, 'node_modules/tsnn'), 'junction');
    fs.mkdirSync(path.join(ws, 'src'));
    for (const [name, text] of [
      ['mismatches.ts', MISMATCHES],
      ['unprovable.ts', UNPROVABLE],
      ['typed.ts', TYPED],
    ]) {
      fs.writeFileSync(file(name), text);
    }
    program = tsi.createProgram(['mismatches.ts', 'unprovable.ts', 'typed.ts'].map(file), {
      target: tsi.ScriptTarget.ES2022,
      module: tsi.ModuleKind.CommonJS,
      moduleResolution: tsi.ModuleResolutionKind.Node10,
      strict: true,
      lib: ['lib.es2022.d.ts'],
      types: [],
      skipLibCheck: true,
      noEmit: true,
    });
  });

  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  const tsnnDiagnostics = (name: string): string[] => {
    const { getTsnnDiagnostics } = require(path.join(ROOT, 'transformer/dist/index.js'));
    return (getTsnnDiagnostics(program, tsi) as ts.Diagnostic[])
      .filter((d) => d.file?.fileName === file(name))
      .map((d) => {
        const { line, character } = d.file!.getLineAndCharacterOfPosition(d.start!);
        return `${line + 1}:${character + 1} ${d.file!.text.slice(d.start, d.start! + d.length!)} TS${d.code} ${d.messageText}`;
      });
  };

  it('the test sources are valid TypeScript', () => {
    const errors = tsi.getPreEmitDiagnostics(program).map((d) => tsi.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(errors).to.deep.equal([]);
  });

  it('reports layers whose literal input size differs from what the chain produces', () => {
    const lines = MISMATCHES.split('\n');
    const seen = new Map<string, number>();
    const expected = EXPECTED.map(([name, layer, message]) => {
      const line = lines.findIndex((l) => l.startsWith(`export const ${name} =`));
      const from = seen.get(name) ?? 0;
      const col = lines[line].indexOf(layer, from);
      seen.set(name, col + layer.length);
      return `${line + 1}:${col + 1} ${layer} TS90013 nn.Sequential: ${message}`;
    });
    expect(tsnnDiagnostics('mismatches.ts')).to.deep.equal(expected);
  });

  it('reports nothing it cannot prove: lazy, unknown and user layers, subclasses, spreads, non-literal sizes, look-alikes', () => {
    expect(tsnnDiagnostics('unprovable.ts')).to.deep.equal([]);
  });

  it('types calls of Sequential and of ModuleList / ModuleDict members as Tensor', () => {
    const checker = program.getTypeChecker();
    const sf = program.getSourceFile(file('typed.ts'))!;
    const types: Record<string, string> = {};
    for (const st of sf.statements) {
      if (!tsi.isVariableStatement(st) || !st.modifiers?.some((m) => m.kind === tsi.SyntaxKind.ExportKeyword)) continue;
      for (const d of st.declarationList.declarations) types[d.name.getText(sf)] = checker.typeToString(checker.getTypeAtLocation(d.name));
    }
    expect(types).to.deep.equal({
      sequentialCalled: 'Tensor',
      sequentialNew: 'Tensor',
      listAt: 'Tensor',
      listIndex: 'Tensor',
      listLoop: 'Tensor',
      dictGet: 'Tensor',
    });
  });
});
