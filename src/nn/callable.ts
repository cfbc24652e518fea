/**
 * PyTorch code writes `nn.Sequential(a, b)` and `optim.SGD(params, opts)` without `new`. Exported layer,
 * container and optimizer classes are wrapped so both forms work; `extends`, `instanceof` and statics
 * behave exactly as with the class itself.
 */
type Ctor = abstract new (...args: any[]) => any;

export type CallableClass<C extends Ctor> = C & (<T extends InstanceType<C>>(...args: ConstructorParameters<C>) => T);

export function callableClass<C extends Ctor>(cls: C): CallableClass<C> {
  return new Proxy(cls, {
    apply: (target, _this, args) => Reflect.construct(target as unknown as new (...a: unknown[]) => unknown, args),
  }) as CallableClass<C>;
}
