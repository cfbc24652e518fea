/** The tsnn diagnostics ttsc reports on the errors fixture (test/transformer/fixtures/errors), whatever the TypeScript version. */

// Line:col of every tsnn diagnostic of the errors fixture: identical for both decorator flavours.
export const EXPECTED_DIAGNOSTICS = [
  'src/errors.ts:7:3 TS90001 MLP.hidden holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  'src/errors.ts:9:3 TS90001 MLP.layers holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  'src/errors.ts:10:3 TS90001 MLP.byName holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  'src/errors.ts:11:3 TS90001 MLP.map holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  'src/errors.ts:12:3 TS90001 MLP.maybe holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  "src/errors.ts:13:3 TS90005 MLP.#secret holds a Module in a #private field, which tsnn cannot register: use a regular (or 'private') field with @child",
  'src/errors.ts:18:22 TS90012 MLP.helper is a constructor parameter property holding a Module, which tsnn cannot register: declare it as a field with @child',
  "src/errors.ts:24:3 TS90002 BadTypes.notTensor is decorated with @param but its type 'number' is not a Tensor",
  "src/errors.ts:25:3 TS90002 BadTypes.alsoNot is decorated with @buffer but its type 'string' is not a Tensor",
  "src/errors.ts:26:3 TS90003 BadTypes.notModule is decorated with @child but its type 'Tensor' is not a Module (nor an array, record or Map of Modules)",
  "src/errors.ts:27:3 TS90003 BadTypes.numbers is decorated with @child but its type 'number[]' is not a Module (nor an array, record or Map of Modules)",
  "src/errors.ts:30:11 TS90008 @buffer options of BadTypes.unknownPersistence: 'persistent' must be the literal true or false (got 'boolean')",
  'src/errors.ts:34:3 TS90006 @child cannot decorate the static property Misuse.s: only instance properties are registered',
  'src/errors.ts:35:10 TS90007 Misuse.both has more than one tsnn decorator (@child, @param): use exactly one',
  'src/errors.ts:36:3 TS90009 @child on Misuse.[key] needs a property with a static name (identifier or string literal)',
  'src/errors.ts:41:3 TS90010 @param on NotAModule.t: NotAModule does not extend nn.Module, so its fields would never be registered',
  'src/errors.ts:45:10 TS90011 Reserved declares __tsnnFields itself, but the tsnn transformer generates it from the @child/@param/@buffer decorators',
  "src/errors.ts:55:3 TS90003 Unconstrained.x is decorated with @child but its type 'T' is not a Module (nor an array, record or Map of Modules)",
  'src/errors.ts:60:5 TS90001 (anonymous class).loose holds a Module but is not registered: add @child (PyTorch would silently drop its parameters)',
  'src/misplaced.ts:5:3 TS90004 @child can only decorate a class property, but Misplaced.method is a method',
  'src/misplaced.ts:6:3 TS90004 @param can only decorate a class property, but Misplaced.acc is an accessor',
  "src/misplaced.ts:9:3 TS90005 @child cannot register the #private field Misplaced.#priv: tsnn's field table works by name; use a regular (or 'private') field",
  'src/misplaced.ts:12:1 TS90004 @child can only decorate a class property, not the class OnClass',
];
