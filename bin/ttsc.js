#!/usr/bin/env node
/**
 * ttsc: `tsc` with the tsnn transformer always on.
 *
 * Same command line as tsc (-p, -b, --watch, --noEmit, ...). It runs TypeScript's own tsc through
 * ts-patch's live compiler (patched in memory, like ts-patch's `tspc`; nothing in node_modules is
 * modified) and adds tsnn's transformer to every Program's plugin list, unless the project's
 * tsconfig already lists it. The exit code is tsc's.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire } = require('module');

const TRANSFORMER = path.join(__dirname, '../transformer/dist/index.js');

function realpath(p) {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

function fail(message) {
  process.stderr.write(`ttsc: ${message}\n`);
  process.exit(1);
}

if (!fs.existsSync(TRANSFORMER)) {
  fail(`the tsnn transformer is not built (${TRANSFORMER} is missing): run \`tsc -p transformer/tsconfig.json\``);
}
const transformerReal = realpath(TRANSFORMER);

// Compile with the TypeScript tsnn depends on (pinned), not whatever else a project may have installed.
if (!process.env.TSP_COMPILER_TS_PATH) {
  try {
    process.env.TSP_COMPILER_TS_PATH = path.dirname(require.resolve('typescript/package.json', { paths: [__dirname] }));
  } catch {
    /* let ts-patch find one */
  }
}

let tsPatch;
try {
  tsPatch = require(require.resolve('ts-patch', { paths: [__dirname] }));
} catch (e) {
  fail(`cannot load ts-patch (a dependency of tsnn): ${e && e.message}`);
}

/** Is this plugin entry our transformer (by resolved file, however it was written)? */
function isOurs(config, baseDir) {
  if (!config || typeof config.transform !== 'string' || config.transformProgram) return false;
  try {
    const resolved = require.resolve(config.transform, { paths: [baseDir || process.cwd()] });
    return realpath(resolved) === transformerReal;
  } catch {
    return false;
  }
}

/** Called by the patched tsc once ts-patch's runtime (`tsp`) exists, before tsc runs. */
function install(tsp) {
  const Base = tsp.PluginCreator;
  if (typeof Base !== 'function') throw new Error('unexpected ts-patch runtime: no PluginCreator');
  class TsnnPluginCreator extends Base {
    constructor(configs, options) {
      const list = Array.isArray(configs) ? configs.slice() : [];
      const baseDir = options && options.resolveBaseDir;
      if (!list.some((c) => isOurs(c, baseDir))) list.unshift({ transform: TRANSFORMER });
      super(list, options);
    }
  }
  tsp.PluginCreator = TsnnPluginCreator;
}

const { js, tsModule } = tsPatch.getLiveModule('tsc.js');

// ts-patch's live tsc sets `tsp.currentLibrary` right after defining its runtime and before any
// compiler code runs: hook in there.
const MARKER = "tsp.currentLibrary = 'tsc';";
const at = js.indexOf(MARKER);
if (at < 0) fail('unsupported ts-patch version (cannot find where to install the tsnn transformer)');
const source = js.slice(0, at + MARKER.length) + '\n__tsnnInstall(tsp);\n' + js.slice(at + MARKER.length);

const script = vm.runInThisContext(
  `(function (exports, require, module, __filename, __dirname, __tsnnInstall) {\n${source}\n});`,
  { filename: tsModule.modulePath },
);
const tsRequire = createRequire(tsModule.modulePath);
const tsModuleObj = { exports: {}, filename: tsModule.modulePath, id: tsModule.modulePath };
script.call(tsModuleObj.exports, tsModuleObj.exports, tsRequire, tsModuleObj, tsModule.modulePath, path.dirname(tsModule.modulePath), install);
