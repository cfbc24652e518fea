'use strict';
/**
 * Which TypeScript ttsc compiles with: the project's, as `npx tsc` would run it, not one of tsnn's own.
 *
 * 1. TSP_COMPILER_TS_PATH, if set (ts-patch's own setting: a TypeScript package directory, or a
 *    directory to resolve `typescript` from);
 * 2. else the project's `typescript`, resolved from the current directory. TypeScript 7 (the native
 *    compiler) has no JavaScript API to add a transformer to; for it, ttsc takes a TypeScript 5/6
 *    installed beside it under an npm alias (`npm install -D typescript-6@npm:typescript@6`: any
 *    dependency of the project's package.json files whose spec is `npm:typescript@…`);
 * 3. else the TypeScript installed with tsnn, if any.
 */

const fs = require('fs');
const path = require('path');

/** The version of the `typescript` package in `dir`, or undefined if `dir` is not one. */
function typescriptVersion(dir) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return pkg.name === 'typescript' && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/** The package directory of `name` as seen from `base`, or undefined. */
function packageDir(name, base) {
  try {
    return path.dirname(require.resolve(`${name}/package.json`, { paths: [base] }));
  } catch {
    return undefined;
  }
}

const major = (version) => parseInt(version, 10);
const hasJsApi = (version) => major(version) < 7;

/** Names of dependencies installed as `npm:typescript@…` aliases, from every package.json above `dir`. */
function typescriptAliases(dir) {
  const names = [];
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8'));
      for (const field of ['devDependencies', 'dependencies', 'optionalDependencies']) {
        for (const [name, spec] of Object.entries(pkg[field] || {})) {
          if (typeof spec === 'string' && spec.startsWith('npm:typescript@') && !names.includes(name)) names.push(name);
        }
      }
    } catch {
      /* no (readable) package.json here */
    }
    if (path.dirname(d) === d) return names;
  }
}

function noJsApi(dir, version) {
  return (
    `${dir} is TypeScript ${version}, the native compiler, which has no JavaScript API: ttsc cannot add the tsnn ` +
    'transformer to it. Either install TypeScript 6 beside it for ttsc (`npm install -D typescript-6@npm:typescript@6`; ' +
    'ttsc uses a dependency aliased to npm:typescript@…), or compile with plain tsc: tsnn then registers ' +
    "@child/@param/@buffer fields at run time, without ttsc's compile-time checks."
  );
}

/** Returns `{ dir, version }` of the TypeScript to compile with; throws an Error with a message for the user. */
function chooseTypeScript(cwd = process.cwd(), ownDir = __dirname) {
  let dir;
  const explicit = process.env.TSP_COMPILER_TS_PATH;
  if (explicit) {
    dir = typescriptVersion(explicit) ? path.resolve(explicit) : packageDir('typescript', path.resolve(explicit));
    if (!dir) throw new Error(`TSP_COMPILER_TS_PATH=${explicit}: no TypeScript there`);
  } else {
    const project = packageDir('typescript', cwd);
    dir = project;
    if (project && !hasJsApi(typescriptVersion(project) || '0')) {
      dir = typescriptAliases(cwd)
        .map((name) => packageDir(name, cwd))
        .find((d) => d && typescriptVersion(d) && hasJsApi(typescriptVersion(d)));
      if (!dir) throw new Error(noJsApi(project, typescriptVersion(project)));
    }
    dir = dir || packageDir('typescript', ownDir);
    if (!dir) throw new Error('cannot find TypeScript: install it in the project (`npm install -D typescript`)');
  }
  const version = typescriptVersion(dir);
  if (!version) throw new Error(`${dir} is not a TypeScript package`);
  if (!hasJsApi(version)) throw new Error(noJsApi(dir, version));
  if (!fs.existsSync(path.join(dir, 'lib', 'tsc.js'))) throw new Error(`${dir} (TypeScript ${version}) has no lib/tsc.js`);
  return { dir, version };
}

module.exports = { chooseTypeScript };
