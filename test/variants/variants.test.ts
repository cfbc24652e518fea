/**
 * The same models compiled three ways must behave identically (API.md: "Code compiled by plain tsc
 * behaves identically"):
 *   standard      plain tsc + standard decorators (runtime registration through context.metadata)
 *   experimental  plain tsc + experimentalDecorators + emitDecoratorMetadata, useDefineForClassFields off
 *   ttsc          node bin/ttsc.js: the transformer writes `static __tsnnFields`, decorators are removed
 * The builds come from test/variants/build.js (`npm run build:variants`); this test runs it with
 * --if-stale first, so a plain `npm test` is enough. Each build's check.js prints one JSON report.
 */
import { expect } from 'chai';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers';

const ROOT = repoRoot();
const VARIANTS = ['standard', 'experimental', 'ttsc'] as const;
type Variant = (typeof VARIANTS)[number];

interface Report {
  models: Record<string, any>;
  routing: unknown;
  rules: Record<string, string>;
  registration: Record<string, { staticTable: unknown[] | null; runtimeTable: boolean; metadataTable: boolean; fields: unknown[] }>;
  decoratorCalls: number;
}

function runCheck(file: string): Report {
  const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${path.relative(ROOT, file)} failed (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('compile paths: standard decorators, experimentalDecorators, ttsc', function () {
  this.timeout(300_000);
  const reports = {} as Record<Variant, Report>;

  before(() => {
    const b = spawnSync(process.execPath, [path.join(ROOT, 'test/variants/build.js'), '--if-stale'], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`npm run build:variants failed:\n${b.stdout}\n${b.stderr}`);
    for (const v of VARIANTS) reports[v] = runCheck(path.join(ROOT, 'dist/variants', v, 'test/variants/check.js'));
  });

  const aspects: [string, (r: Report, model: string) => unknown][] = [
    ['namedParameters (names, shapes, order)', (r, m) => r.models[m].namedParameters],
    ['uninitialised lazy parameters before the first call', (r, m) => r.models[m].lazyBefore],
    ['namedBuffers and their persistence', (r, m) => r.models[m].namedBuffers],
    ['stateDict keys', (r, m) => r.models[m].stateDictKeys],
    ['namedModules', (r, m) => r.models[m].namedModules],
    ['output values', (r, m) => [r.models[m].outputShape, r.models[m].output]],
    ['parameter and input gradients', (r, m) => [r.models[m].grads, r.models[m].inputGrad]],
    ['toString', (r, m) => r.models[m].repr],
  ];

  it('each variant was compiled the way it claims', () => {
    const js = (v: Variant) => fs.readFileSync(path.join(ROOT, 'dist/variants', v, 'samples/chapter/models.js'), 'utf8');
    expect(js('standard'))
      .to.match(/__esDecorate\(/)
      .and.to.match(/hidden = __runInitializers\(/);
    expect(js('experimental'))
      .to.match(/__decorate\(\[/)
      .and.to.match(/__metadata\("design:type"/)
      .and.to.match(/this\.hidden = new /);
    expect(js('ttsc'))
      .to.match(/static __tsnnFields = /)
      .and.to.match(/^\s+hidden = new /m);
  });

  it('every variant built and ran the same models', () => {
    const models = Object.keys(reports.standard.models);
    expect(models).to.include.members(['sequential', 'mlp', 'mysequential', 'fixedhidden', 'nestmlp', 'chimera', 'scale', 'stats', 'wider']);
    for (const v of VARIANTS) expect(Object.keys(reports[v].models), v).to.deep.equal(models);
  });

  for (const [what, get] of aspects) {
    it(`same ${what} in all three`, () => {
      for (const m of Object.keys(reports.standard.models)) {
        for (const v of VARIANTS) expect(get(reports[v], m), `${m} under ${v} vs standard`).to.deep.equal(get(reports.standard, m));
      }
    });
  }

  it('the expected names (so "the same" is also right)', () => {
    const r = reports.standard.models;
    expect(r.chimera.stateDictKeys).to.deep.equal([
      '0.net.0.weight',
      '0.net.0.bias',
      '0.net.2.weight',
      '0.net.2.bias',
      '0.linear.weight',
      '0.linear.bias',
      '1.weight',
      '1.bias',
      '2.randWeight',
      '2.linear.weight',
      '2.linear.bias',
    ]);
    expect(r.stats.namedBuffers).to.deep.equal([
      ['scratch', [4], false],
      ['runningMean', [4], true],
    ]);
    expect(r.stats.namedParameters.map((p: any[]) => p[0])).to.deep.equal(['first', 'weight', 'scale', 'proj.weight', 'proj.bias']);
    expect(r.stats.stateDictKeys).to.deep.equal(['first', 'weight', 'scale', 'runningMean', 'proj.weight', 'proj.bias']);
    expect(r.wider.namedParameters.map((p: any[]) => p[0])).to.deep.equal([
      'hidden.weight',
      'hidden.bias',
      'out.weight',
      'out.bias',
      'extra.weight',
      'extra.bias',
    ]);
    expect(r.fixedhidden.namedBuffers).to.deep.equal([['randWeight', [20, 20], true]]);
  });

  it('same field routing after construction', () => {
    for (const v of VARIANTS) expect(reports[v].routing, v).to.deep.equal(reports.standard.routing);
    expect(reports.standard.routing).to.deep.equal({ reassignedIsParam: true, rejected: 'Scale.gain: @param expects a Tensor, got number 3' });
  });

  it('same registration rules (a declared field counts as registered; a plain attribute blocks)', () => {
    for (const v of VARIANTS) expect(reports[v].rules, v).to.deep.equal(reports.standard.rules);
    expect(reports.standard.rules).to.deep.equal({
      sameKind: 'params w; buffers extra',
      otherKind: "Declared: 'w' is already registered as a param",
      plainAttribute: "Scale: cannot register buffer 'factor': attribute 'factor' already exists (number 5); delete it first or choose another name",
    });
  });

  it('the registration tables agree, each written by its own mechanism', () => {
    for (const [cls, std] of Object.entries(reports.standard.registration)) {
      const exp = reports.experimental.registration[cls];
      const tt = reports.ttsc.registration[cls];
      expect(exp.fields, `${cls} experimental`).to.deep.equal(std.fields);
      expect(tt.fields, `${cls} ttsc`).to.deep.equal(std.fields);
      // standard decorators record into context.metadata, experimental ones on the class, ttsc a static table
      expect([std.metadataTable, std.runtimeTable, std.staticTable], `${cls} standard`).to.deep.equal([cls !== 'MySequential', false, null]);
      expect([exp.metadataTable, exp.runtimeTable, exp.staticTable], `${cls} experimental`).to.deep.equal([false, cls !== 'MySequential', null]);
      expect([tt.metadataTable, tt.runtimeTable], `${cls} ttsc`).to.deep.equal([false, false]);
    }
  });

  it('under ttsc the classes carry __tsnnFields and the runtime decorators never ran', () => {
    const reg = reports.ttsc.registration;
    expect(reg.MLP.staticTable).to.deep.equal([
      { name: 'hidden', kind: 'child' },
      { name: 'out', kind: 'child' },
    ]);
    expect(reg.FixedHiddenMLP.staticTable).to.deep.equal([
      { name: 'randWeight', kind: 'buffer', persistent: true },
      { name: 'linear', kind: 'child' },
    ]);
    expect(reg.NestMLP.staticTable).to.deep.equal([
      { name: 'net', kind: 'child' },
      { name: 'linear', kind: 'child' },
    ]);
    expect(reg.Stats.staticTable).to.deep.equal(reg.Stats.fields);
    // a subclass's table holds its own fields only; fieldsOf merges the chain
    expect(reg.WiderMLP.staticTable).to.deep.equal([{ name: 'extra', kind: 'child' }]);
    // MySequential has no decorated fields: the transformer leaves it alone
    expect(reg.MySequential.staticTable).to.equal(null);
    expect(reports.ttsc.decoratorCalls).to.equal(0);
    expect(reports.standard.decoratorCalls).to.be.greaterThan(0);
    expect(reports.experimental.decoratorCalls).to.equal(reports.standard.decoratorCalls);
    // and the emitted JS has no decorator helpers for tsnn's decorators
    const js = fs.readFileSync(path.join(ROOT, 'dist/variants/ttsc/samples/chapter/models.js'), 'utf8');
    expect(js).to.not.match(/__decorate|__esDecorate|__runInitializers/);
    expect(js).to.match(/static __tsnnFields = \[/);
  });
});
