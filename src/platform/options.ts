/**
 * The backend's settings in one place: `setBackendOptions({...})` everywhere, environment variables in Node
 * (TSNN_DEVICE, TSNN_THREADS, ...) as the defaults under it. Every setting is read here when it is needed,
 * never from `process.env` directly, so the same code runs in a page (env.browser.ts has no environment).
 * An option set here wins over its environment variable; setting it to `undefined` goes back to the variable.
 */
import type { DeviceSpec } from '../backend/device';
import { DEVICE_NAMES } from '../backend/device';
import { readEnv } from './env';

export interface BackendOptions {
  /** what 'auto' (and the default device) resolves to instead of the fastest device here (TSNN_DEVICE) */
  device?: DeviceSpec;
  /** threads one cpu/webasm kernel may use (TSNN_THREADS; default: the cores here, at most 4; 1 turns threads off) */
  threads?: number;
  /** compiled kernels each device keeps, least recently used evicted first (TSNN_KERNEL_CACHE; default 1024) */
  kernelCache?: number;
  /**
   * Node: where generated kernel modules are cached across processes (TSNN_KERNEL_CACHE_DIR; 'off' or false:
   * nowhere). Default: $XDG_CACHE_HOME/tsnn/kernels, else ~/.cache/tsnn/kernels (platform/kernel-store.ts).
   * Ignored in a browser, which has no such cache.
   */
  kernelCacheDir?: string | false;
  /** tsnn's WebAssembly code generation extensions (TSNN_WASM_CODEGEN=off: false; default true) */
  wasmCodegen?: boolean;
  /** force one matmul kernel variant (TSNN_MATMUL); default: chosen per shape and device */
  matmul?: 'flat' | 'rowvec' | 'tiled4' | 'quads';
  /** force one conv2d kernel variant (TSNN_CONV); default: chosen per shape and device */
  conv?: 'direct' | 'im2col' | 'implicit';
  /** most elements of one im2col column buffer (TSNN_CONV_COLS; tests of the chunked path lower it) */
  convCols?: number;
  /** webasm matmul on the direct WebAssembly SIMD kernel (TSNN_WASM_MATMUL=gpujs or off: false; default true) */
  wasmMatmul?: boolean;
  /** webasm conv2d on the direct WebAssembly implicit-GEMM kernels (TSNN_WASM_CONV=off: false; default true) */
  wasmConv?: boolean;
  /** relaxed-SIMD FMA in the direct kernel where the runtime validates it (TSNN_WASM_FMA=off: false; default true) */
  wasmFma?: boolean;
  /** MiB of packed weight panels the direct kernel keeps (TSNN_WASM_PANEL_CACHE_MB; default 64) */
  wasmPanelCacheMb?: number;
  /** MiB of released direct-kernel output arrays kept for reuse (TSNN_WASM_OUT_POOL_MB; default 64; 0: off) */
  wasmOutPoolMb?: number;
  /**
   * MiB of GL textures the `gpu` device keeps on the GPU (TSNN_GL_TEXTURE_BUDGET_MB; default 256): past it the
   * least recently used are spilled to host memory and uploaded again when next used (gl-residency.ts)
   */
  glTextureBudgetMb?: number;
  /** 'always': split every large kernel over threads instead of timing split against whole (TSNN_SPLIT) */
  split?: 'auto' | 'always';
  /**
   * Browser only: the URL of the tsnn ES module that kernel worker threads load (default: the bundle's own
   * URL, dist/browser/tsnn.mjs). Needed where another bundler renamed or inlined it.
   */
  workerUrl?: string;
}

type Key = keyof BackendOptions;

/** How each option is read from its environment variable (Node only), and checked when set. */
interface OptionSpec<T> {
  env?: string;
  parse(v: string): T | undefined;
  /** what the value must be, or null when it is fine */
  check(v: unknown): string | null;
}

const SPEC: { [K in Key]-?: OptionSpec<BackendOptions[K]> } = {
  device: {
    env: 'TSNN_DEVICE',
    parse: (v) => (v === '' ? undefined : (v as DeviceSpec)),
    check: (v) =>
      ([...DEVICE_NAMES, 'auto'] as unknown[]).includes(v) ? null : `one of ${[...DEVICE_NAMES, 'auto'].map((d) => `'${d}'`).join(', ')}`,
  },
  threads: {
    env: 'TSNN_THREADS',
    parse: (v) => (v === '' ? undefined : Math.max(1, Math.floor(Number(v)) || 1)),
    check: (v) => (Number.isInteger(v) && (v as number) >= 1 ? null : 'a positive integer'),
  },
  kernelCache: {
    env: 'TSNN_KERNEL_CACHE',
    parse: (v) => (Number.isInteger(Number(v)) && Number(v) >= 1 ? Number(v) : undefined),
    check: (v) => (Number.isInteger(v) && (v as number) >= 1 ? null : 'a positive integer number of kernels'),
  },
  kernelCacheDir: {
    env: 'TSNN_KERNEL_CACHE_DIR',
    parse: (v) => (v === 'off' ? false : v === '' ? undefined : v),
    check: (v) => (v === false || (typeof v === 'string' && v !== '') ? null : 'a directory path or false'),
  },
  wasmCodegen: {
    env: 'TSNN_WASM_CODEGEN',
    parse: (v) => (v === 'off' ? false : undefined),
    check: (v) => (typeof v === 'boolean' ? null : 'true or false'),
  },
  matmul: {
    env: 'TSNN_MATMUL',
    parse: (v) => (v === '' ? undefined : (v as BackendOptions['matmul'])),
    check: (v) => (['flat', 'rowvec', 'tiled4', 'quads'].includes(v as string) ? null : "'flat', 'rowvec', 'tiled4' or 'quads'"),
  },
  conv: {
    env: 'TSNN_CONV',
    parse: (v) => (v === 'direct' || v === 'im2col' || v === 'implicit' ? v : undefined),
    check: (v) => (v === 'direct' || v === 'im2col' || v === 'implicit' ? null : "'direct', 'im2col' or 'implicit'"),
  },
  convCols: {
    env: 'TSNN_CONV_COLS',
    parse: (v) => (Number(v) > 0 ? Number(v) : undefined),
    check: (v) => (Number.isInteger(v) && (v as number) >= 1 ? null : 'a positive integer'),
  },
  wasmMatmul: {
    env: 'TSNN_WASM_MATMUL',
    parse: (v) => (v === 'gpujs' || v === 'off' ? false : undefined),
    check: (v) => (typeof v === 'boolean' ? null : 'true or false'),
  },
  wasmConv: {
    env: 'TSNN_WASM_CONV',
    parse: (v) => (v === 'off' ? false : undefined),
    check: (v) => (typeof v === 'boolean' ? null : 'true or false'),
  },
  wasmFma: {
    env: 'TSNN_WASM_FMA',
    parse: (v) => (v === 'off' ? false : undefined),
    check: (v) => (typeof v === 'boolean' ? null : 'true or false'),
  },
  wasmPanelCacheMb: {
    env: 'TSNN_WASM_PANEL_CACHE_MB',
    parse: (v) => (v !== '' && Number.isFinite(Number(v)) && Number(v) >= 0 ? Number(v) : undefined),
    check: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a number of MiB >= 0'),
  },
  wasmOutPoolMb: {
    env: 'TSNN_WASM_OUT_POOL_MB',
    parse: (v) => (v !== '' && Number.isFinite(Number(v)) && Number(v) >= 0 ? Number(v) : undefined),
    check: (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? null : 'a number of MiB >= 0'),
  },
  glTextureBudgetMb: {
    env: 'TSNN_GL_TEXTURE_BUDGET_MB',
    parse: (v) => (v !== '' && Number.isFinite(Number(v)) && Number(v) > 0 ? Number(v) : undefined),
    check: (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? null : 'a number of MiB > 0'),
  },
  split: {
    env: 'TSNN_SPLIT',
    parse: (v) => (v === 'always' ? 'always' : undefined),
    check: (v) => (v === 'auto' || v === 'always' ? null : "'auto' or 'always'"),
  },
  workerUrl: {
    parse: () => undefined,
    check: (v) => (typeof v === 'string' && v !== '' ? null : 'a URL string'),
  },
};

const overrides: BackendOptions = {};
/** Called after a change (devices.ts resizes the kernel caches of existing devices). */
const listeners: ((changed: Key[]) => void)[] = [];

/** One option: set by setBackendOptions, else from its environment variable (Node), else undefined. */
export function option<K extends Key>(key: K): BackendOptions[K] | undefined {
  if (overrides[key] !== undefined) return overrides[key];
  const env = SPEC[key].env;
  if (env === undefined) return undefined;
  const raw = readEnv(env);
  return raw === undefined ? undefined : (SPEC[key].parse(raw) as BackendOptions[K] | undefined);
}

/** Every option as it applies now (unset ones left out). */
export function getBackendOptions(): BackendOptions {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(SPEC) as Key[]) {
    const v = option(key);
    if (v !== undefined) out[key] = v;
  }
  return out as BackendOptions;
}

/**
 * Sets backend options (see BackendOptions); each wins over its environment variable. All are checked
 * before any is applied: an unknown name or a bad value throws and changes nothing.
 */
export function setBackendOptions(opts: BackendOptions): BackendOptions {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`setBackendOptions: expected an options object, got ${String(opts)}`);
  const keys = Object.keys(opts) as Key[];
  for (const key of keys) {
    if (!(key in SPEC)) throw new TypeError(`setBackendOptions: unknown option '${key}': expected one of ${Object.keys(SPEC).join(', ')}`);
    const v = opts[key];
    const want = v === undefined ? null : SPEC[key].check(v);
    if (want) throw new TypeError(`setBackendOptions: option '${key}' must be ${want}, got ${JSON.stringify(v) ?? String(v)}`);
  }
  for (const key of keys) {
    if (opts[key] === undefined) delete overrides[key];
    else (overrides as Record<string, unknown>)[key] = opts[key];
  }
  for (const l of listeners) l(keys);
  return getBackendOptions();
}

/** Runs `fn` after every setBackendOptions call, with the names it set. */
export function onOptionsChange(fn: (changed: Key[]) => void): void {
  listeners.push(fn);
}
