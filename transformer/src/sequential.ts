/**
 * Compile-time check of feature sizes along an `nn.Sequential(...)` chain:
 *
 *     nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(128, 10))
 *     // error TS90013: nn.Sequential: layer 2 (Linear) expects 128 input features but layer 0 (Linear) produces 256
 *
 * Layers are recognised through the type checker: the constructed (or called, `nn.Linear(...)`) value's
 * class must carry `@tsnnLayer <name>` itself (tags.ts), so subclasses and user modules are unknown.
 * Sizes must be number literal types (`784`, or a `const` holding one). Whatever is not understood
 * (Lazy layers, Flatten, user modules, spread arguments, non-literal sizes) forgets the current size, so
 * the check never reports a chain it cannot prove wrong; a later Linear with a literal output size
 * starts a new known chain.
 */
import type * as ts from 'typescript';
import { TagReader } from './tags';
import { Codes, makeDiagnostic } from './diagnostics';

/** Layers that keep the last dimension (the features) as it is, whatever their arguments. */
const SIZE_PRESERVING = new Set(['ReLU', 'GELU', 'Sigmoid', 'Tanh', 'Dropout', 'Identity', 'BatchNorm1d', 'LayerNorm']);

interface Layer {
  /** How the message names it: `layer 2` or `layer 'fc'` (record form). */
  label: string;
  node: ts.Expression;
  /** The @tsnnLayer name, undefined for anything else. */
  kind?: string;
  /** The constructor arguments when the layer is constructed right there. */
  args?: readonly ts.Expression[];
}

export class SequentialChecker {
  constructor(
    private readonly tsi: typeof ts,
    private readonly checker: ts.TypeChecker,
    private readonly tags: TagReader,
  ) {}

  /** The diagnostics for `node` when it constructs tsnn's nn.Sequential from a literal list of layers. */
  check(node: ts.CallExpression | ts.NewExpression): ts.Diagnostic[] {
    const args = node.arguments;
    if (!args || args.length === 0) return [];
    // Cheap syntactic filter before asking the checker: some argument constructs something.
    const record =
      args.length === 1 && this.tsi.isObjectLiteralExpression(this.strip(args[0])) ? (this.strip(args[0]) as ts.ObjectLiteralExpression) : undefined;
    const candidates = record ? record.properties.map((p) => (this.tsi.isPropertyAssignment(p) ? p.initializer : undefined)) : args;
    if (!candidates.some((a) => a && this.constructs(a))) return [];
    if (this.layerName(node) !== 'Sequential') return [];
    const layers = record ? this.recordLayers(record) : this.positionalLayers(args);
    return this.checkChain(layers);
  }

  // ---------------------------------------------------------------------------------------------

  private strip(e: ts.Expression): ts.Expression {
    while (
      this.tsi.isParenthesizedExpression(e) ||
      this.tsi.isAsExpression(e) ||
      this.tsi.isSatisfiesExpression(e) ||
      this.tsi.isNonNullExpression(e)
    )
      e = e.expression;
    return e;
  }

  private constructs(e: ts.Expression): e is ts.NewExpression | ts.CallExpression {
    const s = this.strip(e);
    return this.tsi.isNewExpression(s) || this.tsi.isCallExpression(s);
  }

  /**
   * The @tsnnLayer name of the class of the value `e` evaluates to. For the call form `nn.Linear(...)`
   * (tsnn's callable classes construct when called) the type of the call may be just the contextual
   * `Module`, so the class is read from what the callee constructs.
   */
  private layerName(e: ts.Expression): string | undefined {
    const { tsi, checker } = this;
    try {
      const own = this.tags.layerOfSymbol(checker.getTypeAtLocation(e).getSymbol());
      if (own || !tsi.isCallExpression(e)) return own;
      const made = checker.getSignaturesOfType(checker.getTypeAtLocation(e.expression), tsi.SignatureKind.Construct);
      const names = new Set(made.map((sig) => this.tags.layerOfSymbol(sig.getReturnType().getSymbol())));
      return names.size === 1 ? [...names][0] : undefined;
    } catch {
      return undefined;
    }
  }

  /** Layers in order; the list ends before a spread argument (positions after it are unknown). */
  private positionalLayers(args: readonly ts.Expression[]): Layer[] {
    const out: Layer[] = [];
    for (const [i, a] of args.entries()) {
      if (this.tsi.isSpreadElement(a)) break;
      out.push(this.layer(`layer ${i}`, a));
    }
    return out;
  }

  private recordLayers(obj: ts.ObjectLiteralExpression): Layer[] {
    const { tsi } = this;
    const out: Layer[] = [];
    for (const p of obj.properties) {
      let key: string | undefined;
      let value: ts.Expression | undefined;
      if (tsi.isPropertyAssignment(p) && (tsi.isIdentifier(p.name) || tsi.isStringLiteral(p.name) || tsi.isNumericLiteral(p.name))) {
        key = p.name.text;
        value = p.initializer;
      } else if (tsi.isShorthandPropertyAssignment(p)) {
        key = p.name.text;
        value = p.name;
      }
      if (key === undefined || !value) break; // spread, computed key, method: the order is no longer known
      out.push(this.layer(`layer '${key}'`, value));
    }
    return out;
  }

  private layer(label: string, node: ts.Expression): Layer {
    const s = this.strip(node);
    const args = this.constructs(s) ? s.arguments : undefined;
    return { label, node, kind: this.layerName(s), args };
  }

  /** A number literal type's value (`784`, `const H = 784`), else undefined. */
  private literal(e: ts.Expression | undefined): number | undefined {
    if (!e || this.tsi.isSpreadElement(e)) return undefined;
    const t = this.checker.getTypeAtLocation(e);
    return t.isNumberLiteral() ? t.value : undefined;
  }

  /** The size a layer requires of its input's last dimension, if known. */
  private expects(l: Layer): number | undefined {
    if (!l.args) return undefined;
    if (l.kind === 'Linear') return this.literal(l.args[0]);
    if (l.kind === 'LayerNorm') {
      const shape = l.args[0] && this.strip(l.args[0]);
      if (shape && this.tsi.isArrayLiteralExpression(shape)) return this.literal(shape.elements[shape.elements.length - 1]);
      return this.literal(shape);
    }
    return undefined;
  }

  private checkChain(layers: Layer[]): ts.Diagnostic[] {
    const out: ts.Diagnostic[] = [];
    let size: number | undefined;
    let producer: Layer | undefined;
    for (const l of layers) {
      const want = this.expects(l);
      if (want !== undefined && size !== undefined && want !== size) {
        out.push(
          makeDiagnostic(
            this.tsi,
            l.node,
            Codes.SequentialSizes,
            `nn.Sequential: ${l.label} (${l.kind}) expects ${want} input features but ${producer!.label} (${producer!.kind}) produces ${size}`,
          ),
        );
      }
      if (l.kind === 'Linear') {
        size = l.args ? this.literal(l.args[1]) : undefined;
        producer = size === undefined ? undefined : l;
      } else if (!(l.kind && SIZE_PRESERVING.has(l.kind))) {
        size = undefined;
        producer = undefined;
      }
    }
    return out;
  }
}
