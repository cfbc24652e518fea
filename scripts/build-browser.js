#!/usr/bin/env node
/**
 * The browser build (`npm run build` runs it after tsc): one ES module, dist/browser/tsnn.mjs, with gpu.js's
 * browser build inside. Bundled from tsc's output (dist/src), so it is the same code Node runs, with each
 * platform adapter src/platform/<name>.ts swapped for its <name>.browser.ts (the package.json `browser`
 * field maps the same files for other bundlers). A Node built-in reached from the browser build fails the
 * build (esbuild cannot resolve it for platform 'browser'): nothing Node-only is left in the bundle.
 *
 * The bundle also runs as a kernel worker: in a cross-origin-isolated page, threads.browser.ts starts Web
 * Workers on this same module (its own URL, import.meta.url, kept in `__tsnn_bundle_url`).
 */
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const platformDir = path.join(root, 'dist/src/platform');

/** Resolves `./platform/x` (a Node adapter) to `./platform/x.browser.js` where that exists. */
const platformSwap = {
  name: 'tsnn-platform-swap',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = path.resolve(args.resolveDir, args.path);
      if (path.dirname(target) !== platformDir) return undefined;
      const swapped = `${target.replace(/\.js$/, '')}.browser.js`;
      return fs.existsSync(swapped) ? { path: swapped } : undefined;
    });
  },
};

/** The package root's export names, so the ES module has the same named exports as require('tsnn'). */
function exportNames() {
  const names = Object.keys(require(path.join(root, 'dist/src/index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
  return names.sort();
}

async function main() {
  const names = exportNames();
  const outfile = path.join(root, 'dist/browser/tsnn.mjs');
  const result = await esbuild.build({
    stdin: {
      contents: `import * as tsnn from './dist/src/index.js';\nexport const { ${names.join(', ')} } = tsnn;\n`,
      resolveDir: root,
      sourcefile: 'tsnn-browser-entry.js',
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile,
    sourcemap: true,
    // tsnn reads gpu.js kernel class names (kernel-output.ts); keep them through bundling
    keepNames: true,
    banner: { js: 'var __tsnn_bundle_url = import.meta.url;' },
    metafile: true,
    logLevel: 'warning',
    plugins: [platformSwap],
  });
  const inputs = Object.keys(result.metafile.inputs);
  const nodeOnly = inputs.filter((f) => /dist\/src\/platform\/(?!.*\.browser\.js$)/.test(f) && !/options\.js$/.test(f));
  if (nodeOnly.length) throw new Error(`the browser bundle took Node adapters: ${nodeOnly.join(', ')}`);
  const kb = (fs.statSync(outfile).size / 1024).toFixed(0);
  console.log(`browser bundle: ${path.relative(root, outfile)} (${kb} KiB, ${names.length} exports)`);
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
