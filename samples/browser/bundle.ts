/**
 * esbuild settings shared by the browser demo and the browser bench: one ESM bundle for a page, from tsnn's sources.
 */
import type { BuildOptions, Plugin } from 'esbuild';

// SCRATCH until the `browser` branch lands its platform adapters: Node built-ins reached at import time are stubbed.
const nodeStubs: Plugin = {
  name: 'node-stubs',
  setup(b) {
    b.onResolve({ filter: /^(fs|fs\/promises|os|path|worker_threads|child_process|crypto|buffer|gl|util|zlib)$/ }, (a) => ({
      path: a.path,
      namespace: 'node-stub',
    }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({
      contents: 'module.exports = { constants: {}, cpus: () => [{}], totalmem: () => 4e9 }',
      loader: 'js',
    }));
  },
};

export function browserBundleOptions(o: Pick<BuildOptions, 'entryPoints' | 'outdir'>): BuildOptions {
  return {
    ...o,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
    define: { 'process.env': '{}', 'process.pid': '0' },
    plugins: [nodeStubs],
  };
}
