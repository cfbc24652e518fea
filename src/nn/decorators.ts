/**
 * `@child`, `@param`, `@buffer`: mark a Module field as a sub-module, a trainable tensor or a fixed tensor.
 *
 * With `npx ttsc` the tsnn transformer replaces these with a static table on the class and they never run.
 * Compiled by plain tsc, they run here and record the same entries, for both decorator flavours:
 * standard (TC39) field decorators and `experimentalDecorators`. The JSDoc tag `@tsnnDecorator` is how
 * the transformer recognises them (by symbol, not by name).
 */
import 'reflect-metadata';
import { FieldEntry, FieldKind, recordField, recordMetadata } from './registry';
import { declareField } from './module-state';

type StandardContext = { kind: string; name: string | symbol; private?: boolean; static?: boolean; metadata?: object };
type FieldDecorator = {
  (value: undefined, context: ClassFieldDecoratorContext): any;
  (target: object, propertyKey: string | symbol): void;
};

function isStandardContext(x: unknown): x is StandardContext {
  return typeof x === 'object' && x !== null && 'kind' in x && 'name' in x;
}

/**
 * How many times the runtime decorators ran (applications and `@buffer({...})` factory calls). Code
 * compiled by `ttsc` never calls them, which the compile-path tests check through this counter.
 * @internal
 */
export const decoratorStats = { calls: 0 };

function makeDecorator(kind: FieldKind, persistent?: boolean): FieldDecorator {
  return function decorate(a: unknown, b: unknown): any {
    decoratorStats.calls++;
    if (isStandardContext(b)) {
      if (b.kind !== 'field') throw new Error(`@${kind} can only decorate a class field, not a ${b.kind} ('${String(b.name)}')`);
      if (b.private || b.static || typeof b.name !== 'string') {
        throw new Error(
          `@${kind} cannot decorate the ${b.private ? 'private' : b.static ? 'static' : 'symbol-named'} field '${String(b.name)}': registered names must be public instance fields`,
        );
      }
      const entry: FieldEntry = kind === 'buffer' ? { name: b.name, kind, persistent: persistent ?? true } : { name: b.name, kind };
      if (b.metadata) recordMetadata(b.metadata, entry);
      // runs with `this` = the instance, right before the field is defined on it
      return function (this: object, initial: unknown) {
        declareField(this, entry);
        return initial;
      };
    }
    if (typeof b !== 'string') throw new Error(`@${kind} must decorate a string-named class field`);
    const ctor = (a as { constructor: Function }).constructor;
    checkDesignType(kind, ctor, b, a as object);
    recordField(ctor, kind === 'buffer' ? { name: b, kind, persistent: persistent ?? true } : { name: b, kind });
  } as FieldDecorator;
}

/** With emitDecoratorMetadata, reject a field whose declared class cannot hold what the decorator promises. */
function checkDesignType(kind: FieldKind, ctor: Function, name: string, proto: object): void {
  const type = (Reflect as any).getMetadata?.('design:type', proto, name);
  if (typeof type !== 'function' || type === Object || type === Array) return;
  const wants = kind === 'child' ? 'Module' : 'Tensor';
  for (let c = type; c; c = Object.getPrototypeOf(c)) if (c.name === wants && c.prototype && (c as any)[`__tsnnIs${wants}`]) return;
  throw new Error(`${ctor.name}.${name}: @${kind} needs a ${wants}-typed field, but it is declared as ${type.name}`);
}

/** @tsnnDecorator child */
export const child: FieldDecorator = makeDecorator('child');
/** @tsnnDecorator param */
export const param: FieldDecorator = makeDecorator('param');

/** @tsnnDecorator buffer */
export function buffer(value: undefined, context: ClassFieldDecoratorContext): any;
/** @tsnnDecorator buffer */
export function buffer(target: object, propertyKey: string | symbol): void;
/** @tsnnDecorator buffer */
export function buffer(options?: { persistent?: boolean }): FieldDecorator;
export function buffer(a: unknown, b?: unknown): any {
  if (b === undefined) {
    decoratorStats.calls++;
    return makeDecorator('buffer', (a as { persistent?: boolean } | undefined)?.persistent ?? true);
  }
  return (makeDecorator('buffer') as any)(a, b);
}
