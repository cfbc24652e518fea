/**
 * Codegen extensions for gpu.js 2.24's webasm backend, in a subclass of its WebAssemblyFunctionNode that only
 * tsnn's own GPU instances use (codegenGpu): a user's gpu.js kernels in the same process compile with gpu.js's
 * code, untouched. Together they make the tiled matmul ~2.8x faster (bench/codegen-ablation.ts); results are
 * bit-identical to gpu.js's own code (test/backend/wasm-codegen.test.ts compiles kernels both ways and
 * compares every bit).
 *
 * 1. Contiguous vector loads. gpu.js vectorises a kernel over 4 consecutive `this.thread.x` cells, but
 *    reads every lane-varying array element as a gather: 4 lane extracts, 4 scalar loads, 3 lane
 *    inserts. The commonest varying read in our kernels is `arr[<lane-uniform integer> + this.thread.x]`
 *    (a row of B in a matmul, every contiguous elementwise input): 4 adjacent floats, one `v128.load`:
 *
 *        base = <uniform part> + threadX           (scalar i32)
 *        if (base <=u last - 3) v128.load(base)    (all 4 lanes in bounds: the values the gather reads)
 *        else                   <gpu.js's clamped gather>
 *
 * 2. Integer loop counters (see markIntegerCounter).
 * 3. Thread ids read from locals in the SIMD function (see withThreadIdsInLocals).
 * 4. Bounds checks dropped where an index is provably in range for every thread (inBoundsForEveryThread).
 *
 * Any other index or loop shape goes to gpu.js's own code unchanged. Applied to the pinned gpu.js
 * version only (with another version kernels still run, through gpu.js's code); TSNN_WASM_CODEGEN=off
 * turns them all off.
 */
import { option } from '../platform/options';
import { Artefact, findArtefact, storeArtefact } from './wasm-artefacts';
import { takeOutput } from './wasm/out-pool';
import { isShared } from '../util/shared-memory';

const PINNED_GPUJS = '2.24.1';

/** Read when a kernel is compiled; tests switch them off to compare against gpu.js's own code. */
export const wasmCodegen = { vectorLoads: true, integerCounters: true, threadLocals: true, provenBounds: true };
/** Statistics for tests: reads compiled as vector loads (and of those, without a bounds check), i32 counters. */
export const wasmCodegenStats = { vectorLoads: 0, provenLoads: 0, integerCounters: 0 };

/** Read per kernel compiled: setBackendOptions({ wasmCodegen: false }) (or TSNN_WASM_CODEGEN=off) turns the extensions off. */
export function codegenOn(): boolean {
  return option('wasmCodegen') !== false;
}

/**
 * A gpu.js GPU for `mode`. On webasm its kernels are a subclass of gpu.js's WebAssemblyKernel whose
 * function nodes carry the extensions; gpu.js's own classes are not modified, so other GPU instances
 * (a user's) are unaffected. Used by the backend and by its worker threads.
 */
export function codegenGpu(gpujs: any, mode: string): any {
  const gpu = new gpujs.GPU({ mode });
  const Kernel = mode === 'webasm' ? codegenKernelClass(gpujs) : null;
  // only where gpu.js chose its webasm kernel (not a CPU fallback for a runtime without WebAssembly)
  if (Kernel && gpu.Kernel === gpujs.WebAssemblyKernel) gpu.Kernel = Kernel;
  return gpu;
}

const kernelClasses = new WeakMap<object, any>();

/** The extended kernel class for this gpu.js module (one per module instance), or null where it does not apply. */
export function codegenKernelClass(gpujs: any): any {
  if (kernelClasses.has(gpujs)) return kernelClasses.get(gpujs);
  const Kernel = makeKernelClass(gpujs);
  kernelClasses.set(gpujs, Kernel);
  return Kernel;
}

function makeKernelClass(gpujs: any): any {
  const Node = gpujs?.WebAssemblyFunctionNode;
  const Kernel = gpujs?.WebAssemblyKernel;
  const FunctionBuilder = gpujs?.FunctionBuilder;
  const proto = Node?.prototype;
  if (!proto || !Kernel || !FunctionBuilder || safeVersion() !== PINNED_GPUJS || typeof proto.vGather !== 'function') return null;

  class TsnnWebAssemblyFunctionNode extends Node {
    vGather(table: string, name: string, x: any, y: any, z: any, node: any): string {
      const gather = () => super.vGather(table, name, x, y, z, node);
      return (codegenOn() && vectorLoad(this, table, name, x, y, z, gather)) || gather();
    }
    emitVectorFunction(assembler: any): any {
      if (!codegenOn()) return super.emitVectorFunction(assembler);
      return withThreadIdsInLocals(assembler, () => super.emitVectorFunction(assembler));
    }
    stmtFor(forNode: any): any {
      if (codegenOn()) markIntegerCounter(this, forNode);
      return super.stmtFor(forNode);
    }
    vstmtFor(forNode: any): any {
      if (codegenOn()) markIntegerCounter(this, forNode);
      return super.vstmtFor(forNode);
    }
  }

  const { Input, utils } = gpujs;
  return class TsnnWebAssemblyKernel extends Kernel {
    /** the arguments of the build in progress (the artefact key needs their sizes), its key and cached artefact */
    private tsnnArgs: any[] | null = null;
    private tsnnKey: string | null = null;
    private tsnnHit: Artefact | null = null;
    private tsnnStats0: Record<string, number> | null = null;

    build(...args: any[]): any {
      this.tsnnArgs = args;
      try {
        return super.build(...args);
      } finally {
        this.tsnnArgs = this.tsnnKey = this.tsnnHit = this.tsnnStats0 = null;
      }
    }

    /**
     * gpu.js 2.24.1's WebAssemblyKernel.translateSource, with our function node class in place of
     * WebAssemblyFunctionNode (gpu.js names that class directly, so a subclass is the only way to swap it);
     * skipped where the kernel's artefact is cached (wasm-artefacts.ts): its results are in the metadata.
     */
    translateSource(): boolean {
      const simd = !!Kernel.isSIMDSupported;
      this.tsnnKey = this.tsnnArgs ? artefactKey(this, this.tsnnArgs, simd) : null;
      const hit = this.tsnnKey === null ? null : findArtefact(this.tsnnKey, simd, () => generatorText(gpujs));
      if (hit) {
        this.tsnnHit = hit;
        this.returnType = hit.meta.returnType;
        this.componentCount = hit.meta.componentCount;
        this.usesRandom = hit.meta.usesRandom;
        this.usedMathImports = new Set(hit.meta.mathImports);
        for (const [k, v] of Object.entries(hit.meta.stats)) (wasmCodegenStats as Record<string, number>)[k] += v;
        return true;
      }
      this.tsnnStats0 = { ...wasmCodegenStats };
      const functionBuilder = (this.functionBuilder = FunctionBuilder.fromKernel(this, TsnnWebAssemblyFunctionNode));
      this.tracedFunctions = functionBuilder.traceFunctionCalls('kernel', []);
      if (!this.returnType) this.returnType = functionBuilder.getKernelResultType();
      const components: Record<string, number> = { Number: 1, Float: 1, Integer: 1, LiteralInteger: 1, 'Array(2)': 2, 'Array(3)': 3, 'Array(4)': 4 };
      if (!(this.returnType in components)) return false;
      this.componentCount = components[this.returnType];
      this.usesRandom = false;
      this.usedMathImports = new Set();
      for (const name of this.tracedFunctions) {
        const node = functionBuilder.functionMap[name];
        if (!node) continue;
        if (node.usesRandom) this.usesRandom = true;
        for (const importName of node.usedMathImports) this.usedMathImports.add(importName);
      }
      return true;
    }

    /**
     * gpu.js 2.24.1's WebAssemblyKernel._instantiate without its `WebAssembly.validate(bytes)` before
     * `new WebAssembly.Module(bytes)` (compiling validates: a second full pass over the bytes for nothing),
     * taking the bytes and compiled module of a cached artefact where the build found one, and caching
     * what it generates otherwise.
     */
    _instantiate(entryKey: string, args: any): void {
      let entry = this._moduleCache.get(entryKey);
      if (entry) {
        this._moduleCache.delete(entryKey);
        this._moduleCache.set(entryKey, entry);
      } else {
        const shared = this._threadable();
        const layout = this.computeLayout(args);
        const [tx, ty, tz] = this.threadDim;
        const cells = tx * ty * tz;
        const hit = shared ? null : this.tsnnHit;
        let bytes: Uint8Array, initial: number, maximum: number, module: object;
        const WA = (globalThis as any).WebAssembly;
        if (hit) {
          ({ bytes, module } = hit);
          ({ initial, maximum } = hit.meta);
        } else {
          ({ bytes, initial, maximum } = this._assembleModule(layout, cells, shared));
          module = new WA.Module(bytes);
          if (this.tsnnKey !== null && !shared && this.tsnnStats0) {
            const stats: Record<string, number> = {};
            for (const [k, v] of Object.entries(wasmCodegenStats)) stats[k] = v - (this.tsnnStats0[k] ?? 0);
            const mathImports = Array.from(this.usedMathImports as Set<string>).sort();
            const meta = {
              returnType: this.returnType,
              componentCount: this.componentCount,
              usesRandom: this.usesRandom,
              mathImports,
              initial,
              maximum,
              stats,
            };
            storeArtefact(this.tsnnKey, { meta, bytes, module }, () => generatorText(gpujs));
          }
        }
        const memory = shared ? new WA.Memory({ initial, maximum, shared: true }) : new WA.Memory({ initial, maximum });
        const imports: any = { env: { memory } };
        for (const name of this.usedMathImports) imports.env['math_' + name] = (Math as any)[name];
        const instance = new WA.Instance(module, imports);
        entry = {
          id: nextEntryId++,
          sizeSignature: entryKey,
          shared,
          layout,
          cells,
          bytes,
          module,
          memory,
          mathImports: Array.from(this.usedMathImports).sort(),
          sizeX: tx,
          instance,
          run: instance.exports.run,
          runSimd: instance.exports.run_simd || null,
          f32: new Float32Array(memory.buffer),
          i32: new Int32Array(memory.buffer),
        };
        for (const name in layout.constantArrays) {
          const record = layout.constantArrays[name];
          const value = this.constants[name];
          utils.flattenTo(value instanceof Input ? value.value : value, entry.f32.subarray(record.offset / 4, record.offset / 4 + record.flatLength));
        }
        this._moduleCache.set(entryKey, entry);
        while (this._moduleCache.size > Math.max(this.moduleCacheLimit, 1)) {
          const oldestKey = this._moduleCache.keys().next().value;
          const oldest = this._moduleCache.get(oldestKey);
          this._moduleCache.delete(oldestKey);
          this._releaseEntry(oldest);
        }
      }
      this._active = entry;
      pooledSlice(entry.f32);
    }
  };
}

/**
 * gpu.js copies a run's result out of its memory with `f32.slice`: a fresh array, fresh pages (a fault per
 * 4 KiB). An entry's view slices into an array from the output pool instead (wasm/out-pool.ts: released
 * outputs reused), with the same values. Shared memories (worker threads) keep gpu.js's slice.
 */
function pooledSlice(f32: Float32Array): void {
  if (isShared(f32.buffer) || Object.prototype.hasOwnProperty.call(f32, 'slice')) return;
  Object.defineProperty(f32, 'slice', {
    value: (begin: number, end: number) => {
      const out = takeOutput(end - begin);
      out.set(f32.subarray(begin, end));
      return out;
    },
  });
}

/**
 * Entry ids of the kernels' module caches: gpu.js's own counter is private to its module, and ids only tell
 * entries apart for its worker pool (asynchronous kernels, which tsnn does not run): a range of their own.
 */
let nextEntryId = 2 ** 30;

/** The text of the code that generates kernel modules here (part of every artefact key). */
let generatorTextValue: string | null = null;
function generatorText(gpujs: any): string {
  return (generatorTextValue ??= [
    safeVersion(),
    makeKernelClass,
    vectorLoad,
    withThreadIdsInLocals,
    markIntegerCounter,
    isIntLiteral,
    isIntegerStep,
    assigns,
    laneContiguousBase,
    inBoundsForEveryThread,
    indexRange,
    gpujs?.WebAssemblyKernel?.prototype?._assembleModule,
  ]
    .map(String)
    .join('\n'));
}

/**
 * The artefact key of a kernel about to be analysed (wasm-artefacts.ts), or null where it is not cached: a
 * kernel with user functions, native functions, kernel maps or dynamic sizes, or one run asynchronously.
 */
function artefactKey(k: any, args: any[], simd: boolean): string | null {
  if (k.functions?.length || k.nativeFunctions?.length || k.subKernels?.length || k.plugins?.length) return null;
  if (k.dynamicOutput || k.dynamicArguments || k._threadable() || typeof k.source !== 'string') return null;
  const types: string[] = k.argumentTypes;
  const sizes = types.map((t, i) => (t === 'Array' || t === 'Input' ? k.valueDimensions(args[i]).join('x') : ''));
  return JSON.stringify([
    'tsnn-wasm-artefact-1',
    codegenOn() ? wasmCodegen : false,
    simd,
    k.source,
    k.output,
    types,
    sizes,
    k.argumentNames,
    k.argumentSizes,
    k.argumentBitRatios,
    k.constants,
    k.constantTypes,
    k.constantBitRatios,
    k.returnType,
    k.precision,
    k.loopMaxIterations,
    k.strictIntegers,
    k.fixIntegerDivisionAccuracy,
    k.optimizeFloatMemory,
    k.debug,
    k.leadingReturnStatement,
    k.followingReturnStatement,
  ]);
}

/**
 * `arr[u + this.thread.x]` with `u` lane-uniform as one v128 load (bounds-checked unless proven in range),
 * emitted into the function, with gpu.js's clamped `gather` where lanes may run off the array; returns its
 * type, or null (nothing emitted) to leave the read to gpu.js's gather.
 */
function vectorLoad(fn: any, table: string, name: string, x: any, y: any, z: any, gather: () => string): string | null {
  const layout = fn.assembler?.layout?.[table]?.[name];
  const contiguous = wasmCodegen.vectorLoads && !y && !z && layout ? laneContiguousBase(fn, x) : null;
  if (!contiguous || layout.flatLength < 4) return null;
  const em = fn.em;
  const base = em.addLocal('i32');
  em.globalGet(fn.assembler.globals.threadX);
  fn.emitIndex(contiguous.uniform); // scalar i32: the uniform part is the same for the 4 lanes
  if (contiguous.negate) em.i32Sub();
  else em.i32Add();
  em.localSet(base);
  wasmCodegenStats.vectorLoads++;
  if (wasmCodegen.provenBounds && inBoundsForEveryThread(fn, contiguous, layout.flatLength)) {
    // proven in range for every thread of the grid: the load alone (no branch, so V8 schedules the
    // loop body as one block); a SIMD quad never crosses a row, so its 4 lanes are 4 real threads
    em.localGet(base).i32Const(2).i32Shl().v128Load(layout.offset, 2);
    wasmCodegenStats.provenLoads++;
    return 'vf32';
  }
  // unsigned compare also sends a negative base to the gather (which clamps it like gpu.js always does)
  em.localGet(base)
    .i32Const(layout.flatLength - 4)
    .i32LeU();
  em.if_('v128');
  em.localGet(base).i32Const(2).i32Shl().v128Load(layout.offset, 2);
  em.else_();
  gather();
  em.end();
  return 'vf32';
}

/**
 * Thread ids from locals in the SIMD function: gpu.js reads `this.thread.y/z` (and x) with `global.get`
 * wherever they appear; V8 does not merge or hoist loads of mutable globals, so the tiled matmul recomputed
 * every row base from a global load in its inner loop. The caller sets the ids before each call and the
 * function never writes y/z (nor x, unless it calls helper functions, which step thread.x lane by lane):
 * copying them into locals at entry reads the same values, from registers V8 can reuse across the loop.
 * (Also tried, no measurable gain, removed: v128.load32_splat for lane-uniform reads — V8 already fuses
 * the load + splat into one broadcast — and hoisting thread-invariant index terms out of loops.)
 */
function withThreadIdsInLocals<T>(assembler: any, emit: () => T): T {
  const module = assembler.module;
  const addFunction = module.addFunction;
  const g = assembler.globals;
  const cached = wasmCodegen.threadLocals
    ? [g.threadY, g.threadZ, ...(assembler.helperInfo ? [] : [g.threadX])].filter((i) => typeof i === 'number')
    : [];
  module.addFunction = function (this: any, ...args: any[]) {
    module.addFunction = addFunction;
    const em = addFunction.apply(this, args);
    const locals = new Map<number, number>();
    for (const index of cached) {
      const local = em.addLocal('i32');
      em.globalGet(index).localSet(local);
      locals.set(index, local);
    }
    const globalGet = em.globalGet;
    em.globalGet = function (this: any, index: number) {
      const local = locals.get(index);
      return local === undefined ? globalGet.call(this, index) : this.localGet(local);
    };
    return em;
  };
  try {
    return emit();
  } finally {
    module.addFunction = addFunction;
  }
}

/**
 * gpu.js types every declared local as f32, loop counters included, so each index built from a counter is
 * a float add plus a saturating float->int conversion (3x slower matmul inner loops than integer counters).
 * A counter that starts at an integer literal, steps by an integer literal in the update clause and is never
 * assigned in the body takes only integer values: declaring it i32 ('Integer', the type gpu.js's tracer
 * means to suggest for `i++` counters) computes the same values and keeps index math integral.
 */
function markIntegerCounter(fn: any, forNode: any): void {
  if (!wasmCodegen.integerCounters) return;
  const decl = forNode?.init?.type === 'VariableDeclaration' && forNode.init.declarations.length === 1 ? forNode.init.declarations[0] : null;
  if (!decl || decl.id?.type !== 'Identifier' || !isIntLiteral(decl.init)) return;
  const name = decl.id.name;
  if (!isIntegerStep(forNode.update, name) || assigns(forNode.body, name) || assigns(forNode.test, name)) return;
  const info = fn.getDeclaration?.(decl.id);
  if (!info) return;
  info.suggestedType = 'Integer';
  // gpu.js freezes a literal's type after its first walk ('Integer' here), and its "Integer initialisers
  // decay to f32" rule would then turn the counter back into an f32 on the emitting walk: keep it a literal
  if (fn.literalTypes) delete fn.literalTypes[fn.astKey(decl.init)];
  wasmCodegenStats.integerCounters++;
  // the counter's range inside the body, for index-range proofs: start .. last value passing `name < N`
  const test = forNode.test;
  const ascending =
    forNode.update.type === 'UpdateExpression'
      ? forNode.update.operator === '++'
      : forNode.update.operator === '+=' && forNode.update.right.value > 0;
  if (
    ascending &&
    test?.type === 'BinaryExpression' &&
    test.left?.type === 'Identifier' &&
    test.left.name === name &&
    isIntLiteral(test.right) &&
    (test.operator === '<' || test.operator === '<=')
  ) {
    const bound = test.operator === '<' ? test.right.value - 1 : test.right.value;
    const step = forNode.update.type === 'UpdateExpression' ? 1 : forNode.update.right.value;
    const start = decl.init.value;
    const last = bound >= start ? start + Math.floor((bound - start) / step) * step : start;
    // keyed by the declarator, not the name: another variable of the same name never inherits the range
    (fn.__tsnnCounterRanges ??= new Map()).set(decl, [start, last]);
  }
}

const isIntLiteral = (n: any) => n?.type === 'Literal' && typeof n.value === 'number' && Number.isInteger(n.value) && Math.abs(n.value) < 2 ** 30;

function isIntegerStep(update: any, name: string): boolean {
  if (update?.type === 'UpdateExpression') return update.argument?.type === 'Identifier' && update.argument.name === name;
  return (
    update?.type === 'AssignmentExpression' &&
    (update.operator === '+=' || update.operator === '-=') &&
    update.left?.type === 'Identifier' &&
    update.left.name === name &&
    isIntLiteral(update.right)
  );
}

/** Does any assignment or ++/-- inside `ast` write `name`? */
function assigns(ast: any, name: string): boolean {
  if (!ast || typeof ast !== 'object') return false;
  if (Array.isArray(ast)) return ast.some((n) => assigns(n, name));
  if (ast.type === 'AssignmentExpression' && ast.left?.type === 'Identifier' && ast.left.name === name) return true;
  if (ast.type === 'UpdateExpression' && ast.argument?.type === 'Identifier' && ast.argument.name === name) return true;
  for (const key in ast) {
    if (key === 'loc' || key === 'start' || key === 'end' || key === 'parent') continue;
    const child = ast[key];
    if (child && typeof child === 'object' && assigns(child, name)) return true;
  }
  return false;
}

/**
 * For `u + this.thread.x`, `this.thread.x + u` and `this.thread.x - u` with `u` a lane-uniform integer
 * expression: `{ uniform: u, negate }`; otherwise null.
 */
function laneContiguousBase(fn: any, index: any): { uniform: any; negate: boolean } | null {
  if (!index || index.type !== 'BinaryExpression' || (index.operator !== '+' && index.operator !== '-')) return null;
  const isThreadX = (n: any) => n.type === 'MemberExpression' && fn.getVariableSignature(n) === 'this.thread.value' && n.property.name === 'x';
  let other: any = null;
  if (isThreadX(index.left)) other = index.right;
  else if (index.operator === '+' && isThreadX(index.right)) other = index.left;
  if (!other || fn.vInfo?.exprVarying?.(other) !== false) return null;
  // the uniform part must be integral (gpu.js adds a float part before truncating; we add after)
  const type = fn.getType(other);
  return type === 'Integer' || type === 'LiteralInteger' ? { uniform: other, negate: index.operator === '-' } : null;
}

/**
 * Is `uniform + this.thread.x` (or `- ...`) inside [0, length) for every thread of the grid? Interval
 * arithmetic over integer literals and Integer constants, thread ids ([0, output - 1]), marked loop counters (their start ..
 * last passing value) and + - * |0. Anything else: unknown (then the load keeps its bounds check).
 */
function inBoundsForEveryThread(fn: any, contiguous: { uniform: any; negate: boolean }, length: number): boolean {
  if (fn.dynamicOutput || !Array.isArray(fn.output) || !(fn.output[0] > 0)) return false;
  const u = indexRange(fn, contiguous.uniform);
  if (!u) return false;
  const x: Range = [0, fn.output[0] - 1];
  const [lo, hi] = contiguous.negate ? [x[0] - u[1], x[1] - u[0]] : [u[0] + x[0], u[1] + x[1]];
  return lo >= 0 && hi <= length - 1;
}

type Range = [number, number];

function indexRange(fn: any, ast: any): Range | null {
  if (!ast) return null;
  switch (ast.type) {
    case 'Literal':
      return isIntLiteral(ast) ? [ast.value, ast.value] : null;
    case 'Identifier': {
      const info = fn.getDeclaration?.(ast);
      return (info && fn.__tsnnCounterRanges?.get(info.ast)) ?? null;
    }
    case 'MemberExpression': {
      const signature = fn.getVariableSignature(ast);
      if (signature === 'this.constants.value') {
        // an Integer constant is baked into the code (a part's first thread id: kernel-builder.ts)
        const v = fn.constants?.[ast.property.name];
        return fn.constantTypes?.[ast.property.name] === 'Integer' && isIntLiteral({ type: 'Literal', value: v }) ? [v, v] : null;
      }
      const axis = signature === 'this.thread.value' ? ['x', 'y', 'z'].indexOf(ast.property.name) : -1;
      const dim = axis >= 0 ? (fn.output[axis] ?? 1) : 0;
      return dim > 0 ? [0, dim - 1] : null;
    }
    case 'BinaryExpression': {
      const a = indexRange(fn, ast.left);
      const b = indexRange(fn, ast.right);
      if (!a || !b) return null;
      switch (ast.operator) {
        case '+':
          return [a[0] + b[0], a[1] + b[1]];
        case '-':
          return [a[0] - b[1], a[1] - b[0]];
        case '*': {
          const p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]];
          return [Math.min(...p), Math.max(...p)];
        }
        case '|':
          return b[0] === 0 && b[1] === 0 && Math.abs(a[0]) < 2 ** 31 && Math.abs(a[1]) < 2 ** 31 ? a : null;
      }
      return null;
    }
  }
  return null;
}

function safeVersion(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('gpu.js/package.json').version;
  } catch {
    return undefined;
  }
}
