#!/usr/bin/env node
/**
 * ttsc: `tsc` with the tsnn transformer always on.
 *
 * Same command line as tsc (-p, -b, --watch, --noEmit, ...). It runs the project's TypeScript (see
 * ttsc-typescript.js) through ts-patch's live compiler (patched in memory, like ts-patch's `tspc`; nothing in node_modules is
 * modified) and adds tsnn's transformer to every Program's plugin list, unless the project's
 * tsconfig already lists it. The exit code is tsc's.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const Module = require('module');
const { StartupCache } = require('./ttsc-cache');
const { chooseTypeScript, chooseTsPatch } = require('./ttsc-typescript');

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

  // Like tsc, ignore tsconfig.json when files are named on the command line. (ts-patch's createProgram
  // otherwise looks one up next to the first file and merges its options in; findConfigFile is used
  // for nothing else in ts-patch's runtime.)
  const shim = tsp.tsShim;
  if (shim) {
    tsp.tsShim = new Proxy({}, { get: (_, key) => (key === 'findConfigFile' ? () => undefined : shim[key]) });
  }

  // ts-patch compiles ESM transformers written in TypeScript (through ts-node) to <tmpdir>/tsp/esm/
  // and loads them from there: a shared, predictable directory another user can create first. Give it
  // a private one (mkdtemp: a fresh name, mode 0700), removed at exit.
  if (typeof tsp.getTmpDir === 'function') {
    let root;
    tsp.getTmpDir = (subPath) => {
      if (!root) {
        root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-'));
        process.on('exit', () => fs.rmSync(root, { recursive: true, force: true }));
      }
      const dir = path.join(root, subPath);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return dir;
    };
  }
}

// ts-patch's live tsc sets `tsp.currentLibrary` right after defining its runtime and before any
// compiler code runs: hook in there.
const MARKER = "tsp.currentLibrary = 'tsc';";
const INSTALL_VERSION = 1; // bump when the injected code changes

/** Runs `fn` with the environment variables `vars` set, then restores them. */
function withEnv(vars, fn) {
  const saved = Object.keys(vars).map((k) => [k, process.env[k]]);
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * Runs `fn` with ts-patch's own `require('typescript')` answered by the TypeScript in `tsDir`: a
 * hoisted ts-patch would otherwise load the project's top-level `typescript` (TypeScript 7, say, while
 * ttsc compiles with a TypeScript 6 installed beside it) and fail.
 */
function withTypeScriptFor(tsPatchDir, tsDir, fn) {
  const tsMain = require.resolve(tsDir);
  const original = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, ...rest) {
    if (request === 'typescript' && parent && parent.filename && parent.filename.startsWith(tsPatchDir + path.sep)) return tsMain;
    return original.call(this, request, parent, ...rest);
  };
  try {
    return fn();
  } finally {
    Module._resolveFilename = original;
  }
}

/** ts-patch's (the one in `tsPatchDir`) in-memory patched tsc of the TypeScript in `tsDir`, with our hook call added. */
function patchedTscSource(tsDir, tsVersion, tsPatchDir) {
  const tsPatchMain = require.resolve(tsPatchDir);
  // ts-patch keeps its own cache of patched compilers (and a copy of tsc.js) and runs what it finds
  // there: node_modules/.cache/ts-patch, or, where node_modules is not writable (a global or read-only
  // install), <tmpdir>/ts-patch, which another user can create first. ttsc has its own cache: give
  // ts-patch a private scratch directory and nothing to read.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-ttsc-'));
  let js;
  let error;
  try {
    const env = { TSP_COMPILER_TS_PATH: tsDir, TSP_CACHE_DIR: scratch, TSP_SKIP_CACHE: 'true' };
    js = withTypeScriptFor(tsPatchDir, tsDir, () => withEnv(env, () => require(tsPatchMain).getLiveModule('tsc.js').js));
  } catch (e) {
    error = e;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  if (error) fail(`ts-patch (${tsPatchDir}) cannot patch TypeScript ${tsVersion} (${tsDir}): ${error && error.message}`);
  const at = js.indexOf(MARKER);
  if (at < 0) fail('unsupported ts-patch version (cannot find where to install the tsnn transformer)');
  return js.slice(0, at + MARKER.length) + '\n__tsnnInstall(tsp);\n' + js.slice(at + MARKER.length);
}

/**
 * Start-up cache. Loading ts-patch (which loads all of typescript.js) and compiling the 9 MB patched
 * tsc costs about a second per run; the patched source and V8's code cache for it are kept in the
 * user's cache directory (see ttsc-cache.js for why and how safely), keyed by everything they depend
 * on. Any problem with the cache: do without it.
 */
function cacheKey(tsDir, tscPath, tsPatchDir) {
  try {
    const st = fs.statSync(tscPath);
    return require('crypto')
      .createHash('sha1')
      .update(
        JSON.stringify([
          INSTALL_VERSION,
          fs.readFileSync(path.join(tsDir, 'package.json'), 'utf8'),
          fs.readFileSync(path.join(tsPatchDir, 'package.json'), 'utf8'),
          tscPath,
          st.size,
          st.mtimeMs,
          process.version,
          process.arch,
        ]),
      )
      .digest('hex')
      .slice(0, 20);
  } catch {
    return undefined;
  }
}

let tsDir;
let tsVersion;
let tsPatchDir;
try {
  ({ dir: tsDir, version: tsVersion } = chooseTypeScript());
  ({ dir: tsPatchDir } = chooseTsPatch(tsVersion));
} catch (e) {
  fail(e.message);
}
const tscPath = path.join(tsDir, 'lib', 'tsc.js');
const useCache = !process.env.TSNN_TTSC_NO_CACHE && process.env.TSP_SKIP_CACHE !== 'true';
const key = useCache ? cacheKey(tsDir, tscPath, tsPatchDir) : undefined;
const cache = key ? StartupCache.open(key) : undefined;

const cached = cache && cache.readSource();
let source;
let sourceHash;
if (cached && cached.source.includes('__tsnnInstall(tsp);')) {
  ({ source, hash: sourceHash } = cached);
} else {
  source = patchedTscSource(tsDir, tsVersion, tsPatchDir);
  if (cache) {
    cache.prune();
    sourceHash = cache.writeSource(source);
  }
}
const cachedData = cache && cache.readCodeCache(sourceHash);

const script = new vm.Script(`(function (exports, require, module, __filename, __dirname, __tsnnInstall) {\n${source}\n});`, {
  filename: tscPath,
  cachedData,
});
if (cache && (!cachedData || script.cachedDataRejected)) {
  // After the run, so that the functions tsc compiled lazily are in the cache too.
  process.on('exit', () => cache.writeCodeCache(sourceHash, script.createCachedData()));
}

const tsRequire = Module.createRequire(tscPath);
const tsModuleObj = { exports: {}, filename: tscPath, id: tscPath };
script.runInThisContext().call(tsModuleObj.exports, tsModuleObj.exports, tsRequire, tsModuleObj, tscPath, tsDir + path.sep + 'lib', install);
