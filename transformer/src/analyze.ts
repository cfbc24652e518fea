/**
 * Finds tsnn's field decorators in a source file, checks them, and plans the rewrite of each class;
 * also checks the feature sizes of nn.Sequential chains (sequential.ts).
 * Pure analysis: nothing here changes the AST.
 */
import type * as ts from 'typescript';
import { TagReader, FieldKind } from './tags';
import { TypeOracle } from './types';
import { Codes, makeDiagnostic } from './diagnostics';
import { SequentialChecker } from './sequential';

/** Same shape as FieldEntry in src/nn/registry.ts (kept in sync by hand: no run-time import of src/). */
export interface FieldEntry {
  name: string;
  kind: FieldKind;
  /** buffers only */
  persistent?: boolean;
}

/** The static property the transformer adds (STATIC_TABLE_KEY in src/nn/registry.ts). */
export const STATIC_TABLE_KEY = '__tsnnFields';

export interface ClassPlan {
  /** In declaration order. */
  entries: FieldEntry[];
  /** Property declaration (original node) -> its tsnn decorators (original nodes) to remove. */
  strip: Map<ts.PropertyDeclaration, Set<ts.Decorator>>;
}

export interface FileAnalysis {
  diagnostics: ts.Diagnostic[];
  /** Classes (original nodes) to rewrite; classes without tsnn decorators are absent. */
  plans: Map<ts.ClassLikeDeclaration, ClassPlan>;
}

interface FoundDecorator {
  decorator: ts.Decorator;
  kind: FieldKind;
  /** The call in the called form `@buffer({ ... })`. */
  call?: ts.CallExpression;
}

export class Analyzer {
  readonly checker: ts.TypeChecker;
  private readonly tags: TagReader;
  private readonly types: TypeOracle;
  private readonly sequential: SequentialChecker;
  private readonly files = new WeakMap<ts.SourceFile, FileAnalysis>();

  constructor(
    private readonly tsi: typeof ts,
    readonly program: ts.Program,
  ) {
    this.checker = program.getTypeChecker();
    this.tags = new TagReader(tsi, this.checker);
    this.types = new TypeOracle(tsi, this.checker, this.tags);
    this.sequential = new SequentialChecker(tsi, this.checker, this.tags);
  }

  /** Files whose classes are checked: the project's own sources (not .d.ts, libs or node_modules). */
  isChecked(sf: ts.SourceFile): boolean {
    const p = this.program;
    return !sf.isDeclarationFile && !p.isSourceFileFromExternalLibrary(sf) && !p.isSourceFileDefaultLibrary(sf);
  }

  analyze(sourceFile: ts.SourceFile): FileAnalysis {
    const hit = this.files.get(sourceFile);
    if (hit) return hit;
    const res: FileAnalysis = { diagnostics: [], plans: new Map() };
    if (!sourceFile.isDeclarationFile) {
      const visit = (node: ts.Node): void => {
        if (this.tsi.isClassDeclaration(node) || this.tsi.isClassExpression(node)) this.analyzeClass(node, res);
        else if (this.tsi.isNewExpression(node) || this.tsi.isCallExpression(node)) res.diagnostics.push(...this.sequential.check(node));
        this.tsi.forEachChild(node, visit);
      };
      visit(sourceFile);
    }
    this.files.set(sourceFile, res);
    return res;
  }

  // ---------------------------------------------------------------------------------------------

  private decoratorsOf(node: ts.Node): readonly ts.Decorator[] {
    const tsi = this.tsi;
    return tsi.canHaveDecorators(node) ? (tsi.getDecorators(node) ?? []) : [];
  }

  /** Whether a decorator is one of tsnn's (resolved through the checker, never by name). */
  private classify(decorator: ts.Decorator): FoundDecorator | undefined {
    const tsi = this.tsi;
    let expr: ts.Expression = decorator.expression;
    while (tsi.isParenthesizedExpression(expr)) expr = expr.expression;
    let call: ts.CallExpression | undefined;
    if (tsi.isCallExpression(expr)) {
      call = expr;
      expr = expr.expression;
      while (tsi.isParenthesizedExpression(expr)) expr = expr.expression;
    }
    let target: ts.Node;
    if (tsi.isIdentifier(expr)) target = expr;
    else if (tsi.isPropertyAccessExpression(expr)) target = expr.name;
    else return undefined;
    let symbol: ts.Symbol | undefined;
    try {
      symbol = this.checker.getSymbolAtLocation(target);
    } catch {
      return undefined;
    }
    const kind = this.tags.decoratorKindOfSymbol(symbol);
    return kind ? { decorator, kind, call } : undefined;
  }

  private found(node: ts.Node): FoundDecorator[] {
    const out: FoundDecorator[] = [];
    for (const d of this.decoratorsOf(node)) {
      const f = this.classify(d);
      if (f) out.push(f);
    }
    return out;
  }

  private className(node: ts.ClassLikeDeclaration): string {
    const tsi = this.tsi;
    if (node.name) return node.name.text;
    const p = node.parent;
    if (p) {
      if ((tsi.isVariableDeclaration(p) || tsi.isPropertyAssignment(p) || tsi.isPropertyDeclaration(p)) && p.initializer === node) {
        const n = p.name;
        if (tsi.isIdentifier(n) || tsi.isStringLiteral(n) || tsi.isPrivateIdentifier(n)) return n.text;
      }
      if (tsi.isExportAssignment(p)) return 'default';
    }
    if (tsi.isClassDeclaration(node) && node.modifiers?.some((m) => m.kind === tsi.SyntaxKind.DefaultKeyword)) return 'default';
    return '(anonymous class)';
  }

  /** The property name the runtime sees, or undefined when it is not statically known. */
  private staticName(name: ts.PropertyName): string | undefined {
    const tsi = this.tsi;
    if (tsi.isIdentifier(name) || tsi.isStringLiteral(name) || tsi.isNoSubstitutionTemplateLiteral(name)) return name.text;
    if (tsi.isNumericLiteral(name)) return String(Number(name.text));
    if (tsi.isComputedPropertyName(name)) {
      const e = name.expression;
      if (tsi.isStringLiteral(e) || tsi.isNoSubstitutionTemplateLiteral(e)) return e.text;
      if (tsi.isNumericLiteral(e)) return String(Number(e.text));
    }
    return undefined;
  }

  private displayName(name: ts.PropertyName | ts.BindingName): string {
    const tsi = this.tsi;
    if (tsi.isIdentifier(name) || tsi.isPrivateIdentifier(name)) return name.text;
    if (tsi.isStringLiteral(name) || tsi.isNumericLiteral(name) || tsi.isNoSubstitutionTemplateLiteral(name)) return name.text;
    return name.getText();
  }

  private typeText(t: ts.Type, at: ts.Node): string {
    return this.checker.typeToString(t, at, this.tsi.TypeFormatFlags.NoTruncation);
  }

  private hasModifier(node: ts.Node, kind: ts.SyntaxKind): boolean {
    const tsi = this.tsi;
    return tsi.canHaveModifiers(node) && (tsi.getModifiers(node) ?? []).some((m) => m.kind === kind);
  }

  /** Instance type of the class and whether it is a Module. */
  private moduleStatusOfClass(node: ts.ClassLikeDeclaration): 'yes' | 'no' | 'unknown' {
    try {
      // The class's own symbol. (For a class expression the expression's type may be an intersection,
      // e.g. a mixin `class extends Base` with `Base: B`, so prefer the binder's symbol.)
      const sym: ts.Symbol | undefined =
        (node.name && this.checker.getSymbolAtLocation(node.name)) ||
        (node as unknown as { symbol?: ts.Symbol }).symbol ||
        this.checker.getTypeAtLocation(node).getSymbol();
      if (!sym) return 'unknown';
      const inst = this.checker.getDeclaredTypeOfSymbol(sym);
      return this.types.classStatus(inst, 'tsnnModule');
    } catch {
      return 'unknown';
    }
  }

  private analyzeClass(node: ts.ClassLikeDeclaration, res: FileAnalysis): void {
    const tsi = this.tsi;
    const S = tsi.SyntaxKind;
    const diags = res.diagnostics;
    const cname = this.className(node);
    const push = (n: ts.Node, code: number, msg: string) => diags.push(makeDiagnostic(tsi, n, code, msg));

    // Decorators on the class itself.
    for (const f of this.found(node)) {
      push(f.decorator, Codes.NotAProperty, `@${f.kind} can only decorate a class property, not the class ${cname}`);
    }

    let status: 'yes' | 'no' | 'unknown' | undefined;
    const moduleStatus = () => (status ??= this.moduleStatusOfClass(node));

    const plan: ClassPlan = { entries: [], strip: new Map() };
    let reservedMember: ts.ClassElement | undefined;
    let reportedNotModule = false;

    for (const member of node.members) {
      // Decorated parameters (legacy parameter decorators) of constructors and methods.
      if (tsi.isConstructorDeclaration(member) || tsi.isMethodDeclaration(member) || tsi.isSetAccessorDeclaration(member)) {
        for (const p of member.parameters) {
          for (const f of this.found(p)) {
            push(
              f.decorator,
              Codes.NotAProperty,
              `@${f.kind} can only decorate a class property, not the parameter ${this.displayName(p.name)} of ${cname}`,
            );
          }
          if (tsi.isConstructorDeclaration(member) && tsi.isParameterPropertyDeclaration(p, member) && moduleStatus() === 'yes') {
            const t = this.checker.getTypeAtLocation(p);
            if (this.types.holdsModule(t)) {
              push(
                p.name,
                Codes.ParameterProperty,
                `${cname}.${this.displayName(p.name)} is a constructor parameter property holding a Module, which tsnn cannot register: declare it as a field with @child`,
              );
            }
          }
        }
      }

      if (member.name && this.staticName(member.name) === STATIC_TABLE_KEY) reservedMember = member;

      if (!tsi.isPropertyDeclaration(member)) {
        const what = tsi.isMethodDeclaration(member)
          ? 'method'
          : tsi.isGetAccessorDeclaration(member) || tsi.isSetAccessorDeclaration(member)
            ? 'accessor'
            : 'member';
        for (const f of this.found(member)) {
          const mname = member.name ? this.displayName(member.name) : '(member)';
          push(
            f.decorator,
            Codes.NotAProperty,
            `@${f.kind} can only decorate a class property, but ${cname}.${mname} is ${what === 'accessor' ? 'an' : 'a'} ${what}`,
          );
        }
        continue;
      }

      const prop = member;
      const fname = this.displayName(prop.name);
      const ours = this.found(prop);
      const isStatic = this.hasModifier(prop, S.StaticKeyword);

      if (ours.length === 0) {
        // (a) A Module stored in an unregistered field.
        if (isStatic || this.hasModifier(prop, S.AbstractKeyword)) continue;
        if (moduleStatus() !== 'yes') continue;
        const t = this.checker.getTypeAtLocation(prop);
        if (!this.types.holdsModule(t)) continue;
        if (tsi.isPrivateIdentifier(prop.name)) {
          push(
            prop.name,
            Codes.PrivateName,
            `${cname}.${fname} holds a Module in a #private field, which tsnn cannot register: use a regular (or 'private') field with @child`,
          );
        } else {
          push(
            prop.name,
            Codes.UnregisteredModule,
            `${cname}.${fname} holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)`,
          );
        }
        continue;
      }

      const first = ours[0];
      if (ours.length > 1) {
        push(
          ours[1].decorator,
          Codes.Conflicting,
          `${cname}.${fname} has more than one tsnn decorator (${ours.map((o) => '@' + o.kind).join(', ')}): use exactly one`,
        );
        continue;
      }
      if (isStatic) {
        push(
          first.decorator,
          Codes.StaticField,
          `@${first.kind} cannot decorate the static property ${cname}.${fname}: only instance properties are registered`,
        );
        continue;
      }
      if (tsi.isPrivateIdentifier(prop.name)) {
        push(
          first.decorator,
          Codes.PrivateName,
          `@${first.kind} cannot register the #private field ${cname}.${fname}: tsnn's field table works by name; use a regular (or 'private') field`,
        );
        continue;
      }
      if (this.hasModifier(prop, S.AccessorKeyword)) {
        push(first.decorator, Codes.NotAProperty, `@${first.kind} can only decorate a class property, but ${cname}.${fname} is an accessor`);
        continue;
      }
      const name = this.staticName(prop.name);
      if (name === undefined) {
        push(
          first.decorator,
          Codes.ComputedName,
          `@${first.kind} on ${cname}.${fname} needs a property with a static name (identifier or string literal)`,
        );
        continue;
      }

      // (b) type checks.
      const t = this.checker.getTypeAtLocation(prop);
      if (first.kind === 'child') {
        if (this.types.childVerdict(t) === 'bad') {
          push(
            first.decorator,
            Codes.NotAModule,
            `${cname}.${fname} is decorated with @child but its type '${this.typeText(t, prop)}' is not a Module (nor an array, record or Map of Modules)`,
          );
        }
      } else if (this.types.tensorVerdict(t) === 'bad') {
        push(
          first.decorator,
          Codes.NotATensor,
          `${cname}.${fname} is decorated with @${first.kind} but its type '${this.typeText(t, prop)}' is not a Tensor`,
        );
      }

      if (!reportedNotModule && moduleStatus() === 'no') {
        reportedNotModule = true;
        push(
          first.decorator,
          Codes.ClassNotModule,
          `@${first.kind} on ${cname}.${fname}: ${cname} does not extend nn.Module, so its fields would never be registered`,
        );
      }

      const entry: FieldEntry = { name, kind: first.kind };
      if (first.kind === 'buffer') {
        const p = this.persistentOf(first, cname, fname, diags);
        entry.persistent = p;
      }
      plan.entries.push(entry);
      plan.strip.set(prop, new Set([first.decorator]));
    }

    if (plan.entries.length > 0) {
      if (reservedMember) {
        push(
          reservedMember.name ?? reservedMember,
          Codes.ReservedName,
          `${cname} declares ${STATIC_TABLE_KEY} itself, but the tsnn transformer generates it from the @child/@param/@buffer decorators`,
        );
      } else {
        res.plans.set(node, plan);
      }
    }
  }

  /** `persistent` of `@buffer(...)`: default true; must be statically known. */
  private persistentOf(f: FoundDecorator, cname: string, fname: string, diags: ts.Diagnostic[]): boolean {
    const tsi = this.tsi;
    const call = f.call;
    if (!call || call.arguments.length === 0) return true;
    const arg = call.arguments[0];
    const bad = (node: ts.Node, got: string): boolean => {
      diags.push(
        makeDiagnostic(
          tsi,
          node,
          Codes.BadBufferOptions,
          `@buffer options of ${cname}.${fname}: 'persistent' must be the literal true or false (got '${got}')`,
        ),
      );
      return true;
    };
    // Fast path: an object literal with a literal value.
    if (tsi.isObjectLiteralExpression(arg)) {
      let sawSpread = false;
      let value: ts.Expression | undefined;
      for (const p of arg.properties) {
        if (tsi.isSpreadAssignment(p)) sawSpread = true;
        else if (p.name && this.staticName(p.name) === 'persistent') {
          value = tsi.isPropertyAssignment(p) ? p.initializer : undefined;
          if (!value) sawSpread = true; // shorthand / method: decide by type below
        }
      }
      if (!sawSpread) {
        if (!value) return true;
        let v = value;
        while (tsi.isParenthesizedExpression(v)) v = v.expression;
        if (v.kind === tsi.SyntaxKind.TrueKeyword) return true;
        if (v.kind === tsi.SyntaxKind.FalseKeyword) return false;
      }
    }
    // General case: read the type of `persistent` in the argument's type.
    const checker = this.checker;
    const argType = checker.getTypeAtLocation(arg);
    if (argType.flags & tsi.TypeFlags.Undefined) return true;
    const prop = checker.getPropertyOfType(argType, 'persistent');
    if (!prop) return true;
    const pt = checker.getTypeOfSymbolAtLocation(prop, arg);
    const values = new Set<boolean>();
    for (const part of pt.isUnion() ? pt.types : [pt]) {
      if (part.flags & tsi.TypeFlags.BooleanLiteral) values.add(checker.typeToString(part) === 'true');
      else if (part.flags & (tsi.TypeFlags.Undefined | tsi.TypeFlags.Void)) values.add(true);
      else return bad(arg, this.typeText(pt, arg));
    }
    if (values.size !== 1) return bad(arg, this.typeText(pt, arg));
    return [...values][0];
  }
}
