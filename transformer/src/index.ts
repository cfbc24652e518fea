/**
 * tsnn compiler transformer (ts-patch "program" source transformer, runs `before` TypeScript's own
 * transforms, hence before decorators are lowered).
 *
 * For each class it removes tsnn's `@child` / `@param` / `@buffer` property decorators (recognised
 * through the type checker by the `@tsnnDecorator <kind>` JSDoc tag of their declaration) and adds
 *
 *     static __tsnnFields = [{ name: "hidden", kind: "child" }, { name: "mask", kind: "buffer", persistent: true }];
 *
 * in declaration order (the format of src/nn/registry.ts). Classes without tsnn decorators are left
 * untouched. Misuse (unregistered Module fields, non-Tensor @param, ...) is reported as TypeScript
 * error diagnostics through ts-patch's `addDiagnostic`.
 *
 * Usage: `npx ttsc` (adds this transformer automatically), or with ts-patch's tspc:
 *     "plugins": [{ "transform": "tsnn/transformer/dist/index.js" }]
 *
 * Only `typescript` is used at run time (preferably the instance ts-patch hands over).
 */
import type * as ts from 'typescript';
import { ClassPlan, FieldEntry, STATIC_TABLE_KEY } from './analyze';
import { analyzerFor, fileDiagnostics } from './analyzers';

export { Analyzer, FieldEntry, ClassPlan, STATIC_TABLE_KEY } from './analyze';
export { Codes } from './diagnostics';

/** What ts-patch passes as the third argument of a "program" transformer. */
export interface TransformerExtras {
  ts?: typeof ts;
  addDiagnostic?: (diag: ts.Diagnostic) => number | void;
  diagnostics?: readonly ts.Diagnostic[];
}

const reported = new WeakSet<ts.Program>();

/** All tsnn diagnostics of a program (its own source files only). */
export function getTsnnDiagnostics(program: ts.Program, tsInstance?: typeof ts): ts.Diagnostic[] {
  const tsi = tsInstance ?? (require('typescript') as typeof ts);
  const out: ts.Diagnostic[] = [];
  for (const sf of program.getSourceFiles()) out.push(...fileDiagnostics(tsi, program, sf));
  return out;
}

/**
 * Diagnostics are reported once per Program, for all of its source files, when the transformer is
 * first created for it: that also covers `--noEmit` and `--emitDeclarationOnly`, where no JS is
 * transformed, and incremental builds that emit only some files.
 */
function reportOnce(tsi: typeof ts, program: ts.Program, extras: TransformerExtras | undefined): void {
  if (reported.has(program)) return;
  reported.add(program);
  const add = extras?.addDiagnostic;
  if (!add) return;
  for (const d of getTsnnDiagnostics(program, tsi)) add(d);
}

function entryLiteral(f: ts.NodeFactory, e: FieldEntry): ts.ObjectLiteralExpression {
  const props = [
    f.createPropertyAssignment('name', f.createStringLiteral(e.name)),
    f.createPropertyAssignment('kind', f.createStringLiteral(e.kind)),
  ];
  if (e.kind === 'buffer') props.push(f.createPropertyAssignment('persistent', e.persistent === false ? f.createFalse() : f.createTrue()));
  return f.createObjectLiteralExpression(props, false);
}

function rewriteClass<T extends ts.ClassDeclaration | ts.ClassExpression>(tsi: typeof ts, f: ts.NodeFactory, node: T, plan: ClassPlan): T {
  const members: ts.ClassElement[] = [];
  for (const m of node.members) {
    const orig = tsi.getOriginalNode(m);
    const strip = tsi.isPropertyDeclaration(m) && tsi.isPropertyDeclaration(orig) ? plan.strip.get(orig) : undefined;
    if (strip && tsi.isPropertyDeclaration(m)) {
      const mods = (m.modifiers ?? []).filter((x) => !(tsi.isDecorator(x) && strip.has(tsi.getOriginalNode(x) as ts.Decorator)));
      members.push(
        f.updatePropertyDeclaration(m, mods.length ? mods : undefined, m.name, m.questionToken ?? m.exclamationToken, m.type, m.initializer),
      );
    } else {
      members.push(m);
    }
  }
  const table = f.createPropertyDeclaration(
    [f.createModifier(tsi.SyntaxKind.StaticKeyword)],
    STATIC_TABLE_KEY,
    undefined,
    undefined,
    f.createArrayLiteralExpression(
      plan.entries.map((e) => entryLiteral(f, e)),
      false,
    ),
  );
  // First, so that static initialisers further down may already construct instances.
  members.unshift(table);
  if (tsi.isClassDeclaration(node)) {
    return f.updateClassDeclaration(node, node.modifiers, node.name, node.typeParameters, node.heritageClauses, members) as T;
  }
  return f.updateClassExpression(node as ts.ClassExpression, node.modifiers, node.name, node.typeParameters, node.heritageClauses, members) as T;
}

/** ts-patch entry point: `(program, config, { ts, addDiagnostic })` -> TransformerFactory. */
export default function tsnnTransformer(program: ts.Program, _config?: unknown, extras?: TransformerExtras): ts.TransformerFactory<ts.SourceFile> {
  const tsi: typeof ts = extras?.ts ?? require('typescript');
  reportOnce(tsi, program, extras);
  const analyzer = analyzerFor(tsi, program);

  return (ctx: ts.TransformationContext) => {
    const f = ctx.factory;
    return (sourceFile: ts.SourceFile): ts.SourceFile => {
      const original = tsi.getOriginalNode(sourceFile);
      if (!tsi.isSourceFile(original) || original.isDeclarationFile) return sourceFile;
      const { plans } = analyzer.analyze(original);
      if (plans.size === 0) return sourceFile;
      const visit = (node: ts.Node): ts.Node => {
        const out = tsi.visitEachChild(node, visit, ctx);
        if (tsi.isClassDeclaration(out) || tsi.isClassExpression(out)) {
          const plan = plans.get(tsi.getOriginalNode(node) as ts.ClassLikeDeclaration);
          if (plan) return rewriteClass(tsi, f, out, plan);
        }
        return out;
      };
      return tsi.visitEachChild(sourceFile, visit, ctx);
    };
  };
}
