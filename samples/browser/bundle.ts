/**
 * esbuild settings shared by the browser demo and the browser bench. Pages import tsnn as the samples do
 * (`../../src`), and the bundle gets the package's browser build instead (dist/browser/tsnn.mjs from
 * `npm run build`, what `import 'tsnn'` gives a bundler): one copy of tsnn, exactly as users get it.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { BuildOptions, Plugin } from 'esbuild';

function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

/** Sends imports of src/ (the index only) to dist/browser/tsnn.mjs; a deep import would be a second copy of tsnn, so it fails. */
function tsnnBrowserBuild(root: string): Plugin {
  const src = path.join(root, 'src');
  const bundle = path.join(root, 'dist', 'browser', 'tsnn.mjs');
  return {
    name: 'tsnn-browser-build',
    setup(b) {
      b.onResolve({ filter: /^\.\.?\// }, (a) => {
        const target = path.resolve(a.resolveDir, a.path).replace(/(\/index)?(\.ts|\.js)?$/, '');
        if (target === src) {
          if (!fs.existsSync(bundle)) return { errors: [{ text: `${path.relative(root, bundle)} is missing: run \`npm run build\` first` }] };
          return { path: bundle };
        }
        if (target.startsWith(src + path.sep) && !a.importer.startsWith(src + path.sep))
          return { errors: [{ text: `page code imports ${a.path}: import tsnn's public API ('src', the package root) only` }] };
        return undefined;
      });
    },
  };
}

export function browserBundleOptions(o: Pick<BuildOptions, 'entryPoints' | 'outdir'>): BuildOptions {
  return {
    ...o,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    // tsnn reads gpu.js kernel class names (as scripts/build-browser.js keeps them)
    keepNames: true,
    logLevel: 'warning',
    plugins: [tsnnBrowserBuild(repoRoot())],
  };
}
