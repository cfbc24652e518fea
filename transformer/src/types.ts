/**
 * Type questions the checks need: "is this a Module?", "is this a Tensor?", "does this field hold Modules?".
 * Everything goes through the type checker; classes are recognised by the marker tags on their
 * declarations (see tags.ts), looking through base classes.
 */
import type * as ts from 'typescript';
import { TagReader, ClassTag } from './tags';

/** 'yes': certainly; 'no': certainly not; 'unknown': `any`, an unresolved base class, ... */
export type Tri = 'yes' | 'no' | 'unknown';

export class TypeOracle {
  private readonly statusCache = new Map<ClassTag, WeakMap<ts.Type, Tri>>([
    ['tsnnModule', new WeakMap()],
    ['tsnnTensor', new WeakMap()],
  ]);

  constructor(
    private readonly tsi: typeof ts,
    private readonly checker: ts.TypeChecker,
    private readonly tags: TagReader,
  ) {}

  /** `any` (not `unknown`): the user opted out of checking. */
  isAny(t: ts.Type): boolean {
    return (t.flags & this.tsi.TypeFlags.Any) !== 0;
  }

  /** Union members without null / undefined / void (a non-union is its own single member). */
  nonNullish(t: ts.Type): ts.Type[] {
    const F = this.tsi.TypeFlags;
    const parts = t.isUnion() ? t.types : [t];
    return parts.filter((p) => (p.flags & (F.Null | F.Undefined | F.Void)) === 0);
  }

  /** Whether `t` is an instance of the class tagged `tag` (or of a subclass), following base classes. */
  classStatus(t: ts.Type, tag: ClassTag, depth = 0): Tri {
    const cache = this.statusCache.get(tag)!;
    const hit = cache.get(t);
    if (hit) return hit;
    cache.set(t, 'no'); // cycle guard
    const res = this.computeClassStatus(t, tag, depth);
    cache.set(t, res);
    return res;
  }

  private computeClassStatus(t: ts.Type, tag: ClassTag, depth: number): Tri {
    const { tsi, checker } = this;
    const F = tsi.TypeFlags;
    if (depth > 32) return 'unknown';
    if (t.flags & F.Any) return 'unknown';
    if (t.flags & F.TypeParameter) {
      const c = checker.getBaseConstraintOfType(t);
      return c && c !== t ? this.classStatus(c, tag, depth + 1) : 'no';
    }
    if (t.isIntersection()) {
      let unknown = false;
      for (const p of t.types) {
        const s = this.classStatus(p, tag, depth + 1);
        if (s === 'yes') return 'yes';
        if (s === 'unknown') unknown = true;
      }
      return unknown ? 'unknown' : 'no';
    }
    if (!(t.flags & F.Object)) return 'no';
    const obj = t as ts.ObjectType;
    const target: ts.Type = obj.objectFlags & tsi.ObjectFlags.Reference ? ((obj as ts.TypeReference).target ?? obj) : obj;
    if (this.tags.symbolHasClassTag(target.getSymbol(), tag)) return 'yes';
    if ((target as ts.ObjectType).objectFlags & tsi.ObjectFlags.ClassOrInterface) {
      let unknown = false;
      let bases: ts.BaseType[] = [];
      try {
        bases = checker.getBaseTypes(target as ts.InterfaceType);
      } catch {
        return 'unknown';
      }
      for (const b of bases) {
        const s = this.classStatus(b, tag, depth + 1);
        if (s === 'yes') return 'yes';
        if (s === 'unknown') unknown = true;
      }
      // A class whose `extends` expression has no resolvable type (mixins typed any, errors) has no bases.
      if (bases.length === 0 && this.hasUnresolvedExtends(target)) unknown = true;
      return unknown ? 'unknown' : 'no';
    }
    return 'no';
  }

  private hasUnresolvedExtends(t: ts.Type): boolean {
    const { tsi } = this;
    for (const d of t.getSymbol()?.declarations ?? []) {
      if (!tsi.isClassLike(d)) continue;
      for (const h of d.heritageClauses ?? []) if (h.token === tsi.SyntaxKind.ExtendsKeyword && h.types.length) return true;
    }
    return false;
  }

  isModule(t: ts.Type): boolean {
    return this.classStatus(t, 'tsnnModule') === 'yes';
  }

  /** Element types when `t` is a collection tsnn knows how to hold Modules in, else undefined. */
  containerElements(t: ts.Type): readonly ts.Type[] | undefined {
    const { tsi, checker } = this;
    if (!(t.flags & tsi.TypeFlags.Object)) return undefined;
    if (checker.isArrayType(t) || checker.isTupleType(t)) return checker.getTypeArguments(t as ts.TypeReference);
    const sym = t.getSymbol();
    const name = sym?.getName();
    if ((name === 'Map' || name === 'ReadonlyMap') && (t as ts.ObjectType).objectFlags & tsi.ObjectFlags.Reference) {
      const args = checker.getTypeArguments(t as ts.TypeReference);
      if (args.length === 2) return [args[1]];
    }
    const str = checker.getIndexInfoOfType(t, tsi.IndexKind.String);
    if (str) return [str.type];
    return undefined;
  }

  /** Every non-nullish member is a Module (any counts as fine). */
  private allModules(t: ts.Type): boolean {
    const parts = this.nonNullish(t);
    if (parts.length === 0) return false;
    return parts.every((p) => this.isAny(p) || this.isModule(p));
  }

  /** Some non-nullish member is a Module. */
  private someModule(t: ts.Type): boolean {
    return this.nonNullish(t).some((p) => this.isModule(p));
  }

  /**
   * For `@child`: 'ok' if every non-nullish member of the type is a Module, or an array / tuple /
   * string-keyed record / Map of Modules; 'any' if the type is any; 'bad' otherwise.
   */
  childVerdict(t: ts.Type): 'ok' | 'any' | 'bad' {
    const parts = this.nonNullish(t);
    if (parts.some((p) => this.isAny(p))) return 'any';
    if (parts.length === 0) return 'bad';
    for (const p of parts) {
      if (this.isModule(p)) continue;
      const elems = this.containerElements(p);
      if (elems && elems.length > 0 && elems.every((e) => this.allModules(e))) continue;
      return 'bad';
    }
    return 'ok';
  }

  /** For the unregistered-field check: does the type hold a Module (directly or in a collection)? */
  holdsModule(t: ts.Type): boolean {
    for (const p of this.nonNullish(t)) {
      if (this.isAny(p)) continue;
      if (this.isModule(p)) return true;
      const elems = this.containerElements(p);
      if (elems && elems.some((e) => this.someModule(e))) return true;
    }
    return false;
  }

  /** For `@param` / `@buffer`: 'ok' if every non-nullish member is a Tensor; 'any'; or 'bad'. */
  tensorVerdict(t: ts.Type): 'ok' | 'any' | 'bad' {
    const parts = this.nonNullish(t);
    if (parts.some((p) => this.isAny(p))) return 'any';
    if (parts.length === 0) return 'bad';
    return parts.every((p) => this.classStatus(p, 'tsnnTensor') === 'yes') ? 'ok' : 'bad';
  }
}
