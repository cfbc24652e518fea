/** One Analyzer per Program, shared by the transformer (index.ts) and the language-service plugin (plugin.ts). */
import type * as ts from 'typescript';
import { Analyzer } from './analyze';

const analyzers = new WeakMap<ts.Program, Analyzer>();

export function analyzerFor(tsi: typeof ts, program: ts.Program): Analyzer {
  let a = analyzers.get(program);
  if (!a) {
    a = new Analyzer(tsi, program);
    analyzers.set(program, a);
  }
  return a;
}

/** The tsnn diagnostics of one file of the program ([] for .d.ts, libraries and node_modules). */
export function fileDiagnostics(tsi: typeof ts, program: ts.Program, sf: ts.SourceFile): readonly ts.Diagnostic[] {
  const a = analyzerFor(tsi, program);
  return a.isChecked(sf) ? a.analyze(sf).diagnostics : [];
}
