/**
 * Recognising tsnn's declarations by their JSDoc marker tags, read from the raw comment text.
 *
 * tsnn's own declarations carry marker tags:
 *  - `/** @tsnnDecorator child *\/` (or `param`, `buffer`) on the decorator functions,
 *  - `/** @tsnnModule *\/` on `class Module`,
 *  - `/** @tsnnTensor *\/` on `class Tensor`.
 *  - `/** @tsnnLayer Linear *\/` (or `Sequential`, `ReLU`, ...) on the layer classes whose feature sizes the
 *    nn.Sequential check understands (see sequential.ts). Only the tagged class itself counts, not its
 *    subclasses: a subclass may change the constructor or forward.
 *
 * The comments are scanned directly instead of going through `ts.getJSDocTags`: since TypeScript 5.3,
 * tsc does not parse JSDoc in .ts/.d.ts files unless asked to (JSDocParsingMode), so parsed tags may be
 * missing depending on who created the Program. The raw text is always there (the published .d.ts keeps
 * the comments), so this works the same under tsc, tspc, ttsc and language services.
 */
import type * as ts from 'typescript';

export type FieldKind = 'child' | 'param' | 'buffer';
export type ClassTag = 'tsnnModule' | 'tsnnTensor';

const DECORATOR_TAG = /@tsnnDecorator[ \t]+(child|param|buffer)(?![\w$-])/;
const LAYER_TAG = /@tsnnLayer[ \t]+([A-Za-z_$][\w$]*)/;
const CLASS_TAGS: Record<ClassTag, RegExp> = {
  tsnnModule: /@tsnnModule(?![\w$-])/,
  tsnnTensor: /@tsnnTensor(?![\w$-])/,
};

export class TagReader {
  private readonly docCache = new WeakMap<ts.Node, readonly string[]>();
  private readonly kindCache = new WeakMap<ts.Symbol, FieldKind | null>();
  private readonly classTagCache = new WeakMap<ts.Symbol, Set<ClassTag>>();
  private readonly layerCache = new WeakMap<ts.Symbol, string | null>();

  constructor(
    private readonly tsi: typeof ts,
    private readonly checker: ts.TypeChecker,
  ) {}

  /** The `/** ... *\/` comments written in front of a declaration. */
  docComments(decl: ts.Node): readonly string[] {
    const hit = this.docCache.get(decl);
    if (hit) return hit;
    const { tsi } = this;
    let owner: ts.Node = decl;
    // `/** doc */ export const x = ...`: the comment belongs to the variable statement.
    if (tsi.isVariableDeclaration(owner) && tsi.isVariableDeclarationList(owner.parent)) {
      const list = owner.parent;
      if (list.declarations[0] === owner && tsi.isVariableStatement(list.parent)) owner = list.parent;
    }
    const out: string[] = [];
    const sf = owner.getSourceFile?.();
    if (sf && owner.pos >= 0) {
      const text = sf.text;
      for (const r of tsi.getLeadingCommentRanges(text, owner.pos) ?? []) {
        if (r.kind !== tsi.SyntaxKind.MultiLineCommentTrivia) continue;
        const c = text.slice(r.pos, r.end);
        if (c.startsWith('/**') && c !== '/**/') out.push(c);
      }
    }
    this.docCache.set(decl, out);
    return out;
  }

  /** The tsnn decorator kind a symbol stands for (aliases followed), or undefined. */
  decoratorKindOfSymbol(symbol: ts.Symbol | undefined): FieldKind | undefined {
    if (!symbol) return undefined;
    const sym = this.resolveAlias(symbol);
    const hit = this.kindCache.get(sym);
    if (hit !== undefined) return hit ?? undefined;
    let kind: FieldKind | null = null;
    for (const d of sym.declarations ?? []) {
      for (const c of this.docComments(d)) {
        const m = DECORATOR_TAG.exec(c);
        if (m) {
          kind = m[1] as FieldKind;
          break;
        }
      }
      if (kind) break;
    }
    this.kindCache.set(sym, kind);
    return kind ?? undefined;
  }

  /** Whether one of the symbol's declarations carries the marker tag. */
  symbolHasClassTag(symbol: ts.Symbol | undefined, tag: ClassTag): boolean {
    if (!symbol) return false;
    const sym = this.resolveAlias(symbol);
    let tags = this.classTagCache.get(sym);
    if (!tags) {
      tags = new Set();
      for (const d of sym.declarations ?? []) {
        for (const c of this.docComments(d)) {
          for (const t of Object.keys(CLASS_TAGS) as ClassTag[]) if (CLASS_TAGS[t].test(c)) tags.add(t);
        }
      }
      this.classTagCache.set(sym, tags);
    }
    return tags.has(tag);
  }

  /** The layer name of `@tsnnLayer <name>` on the symbol's own declarations, or undefined. */
  layerOfSymbol(symbol: ts.Symbol | undefined): string | undefined {
    if (!symbol) return undefined;
    const sym = this.resolveAlias(symbol);
    let layer = this.layerCache.get(sym);
    if (layer === undefined) {
      layer = null;
      for (const d of sym.declarations ?? []) {
        for (const c of this.docComments(d)) layer ??= LAYER_TAG.exec(c)?.[1] ?? null;
      }
      this.layerCache.set(sym, layer);
    }
    return layer ?? undefined;
  }

  private resolveAlias(symbol: ts.Symbol): ts.Symbol {
    if (symbol.flags & this.tsi.SymbolFlags.Alias) {
      try {
        return this.checker.getAliasedSymbol(symbol);
      } catch {
        return symbol;
      }
    }
    return symbol;
  }
}
