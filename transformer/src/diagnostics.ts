/** The diagnostics the tsnn transformer reports, as real TypeScript diagnostics (category Error). */
import type * as ts from 'typescript';

export const Codes = {
  /** A Module-typed property of a Module class without @child. */
  UnregisteredModule: 90001,
  /** @param / @buffer on a property whose type is not a Tensor. */
  NotATensor: 90002,
  /** @child on a property whose type is not a Module (or a collection of Modules). */
  NotAModule: 90003,
  /** A tsnn decorator on a method, accessor, class or parameter. */
  NotAProperty: 90004,
  /** A tsnn decorator on a #private field, or a #private field holding a Module. */
  PrivateName: 90005,
  /** A tsnn decorator on a static property. */
  StaticField: 90006,
  /** Two tsnn decorators on one property. */
  Conflicting: 90007,
  /** @buffer({ persistent }) whose value is not a known boolean. */
  BadBufferOptions: 90008,
  /** A tsnn decorator on a property with a computed name. */
  ComputedName: 90009,
  /** A tsnn decorator in a class that does not extend Module. */
  ClassNotModule: 90010,
  /** A class that declares __tsnnFields itself. */
  ReservedName: 90011,
  /** A constructor parameter property holding a Module. */
  ParameterProperty: 90012,
  /** nn.Sequential whose literal feature sizes do not chain (a layer expects what its predecessor does not produce). */
  SequentialSizes: 90013,
} as const;

export function makeDiagnostic(tsi: typeof ts, node: ts.Node, code: number, messageText: string): ts.Diagnostic {
  const file = node.getSourceFile();
  return {
    file,
    start: node.getStart(file),
    length: node.getWidth(file),
    messageText,
    category: tsi.DiagnosticCategory.Error,
    code,
    source: 'tsnn',
  };
}
