'use strict';
/**
 * Which TypeScript and ts-patch ttsc compiles with: the project's, as `npx tsc` would run it, not tsnn's own.
 *
 * TypeScript:
 * 1. TSP_COMPILER_TS_PATH, if set (ts-patch's own setting: a TypeScript package directory, or a
 *    directory to resolve `typescript` from);
 * 2. else the project's `typescript`, resolved from the current directory. TypeScript 7 (the native
 *    compiler) has no JavaScript API to add a transformer to; for it, ttsc takes a TypeScript 5/6
 *    installed beside it under an npm alias (`npm install -D typescript-6@npm:typescript@6`: any
 *    dependency of the project's package.json files whose spec is `npm:typescript@…`);
 * 3. else the TypeScript installed with tsnn, if any.
 *
 * ts-patch: the one matching that TypeScript's major (SUPPORTED), looked for in the same places: the
 * project's `ts-patch`, then dependencies aliased to `npm:ts-patch@…`, then tsnn's own.
 *
 * The supported range is what test/compilers installs and the suite runs (test/transformer/
 * compiler-range.test.ts): the lowest and highest versions with their ts-patch. TypeScript 5.0 is the
 * lowest: the transformer reads standard (TC39) decorators, which TypeScript parses from 5.0 on.
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

/** TypeScript major → the ts-patch major that patches it (ts-patch 4 refuses TypeScript < 6; 3 predates 6). */
const SUPPORTED = { 5: 3, 6: 4 };
const LOWEST = '5.0';
const HIGHEST = '6.x';

/** Names of dependencies installed as `npm:<pkg>@…` aliases, from every package.json above `dir`. */
function aliasesOf(pkgName, dir) {
  const names = [];
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8'));
      for (const field of ['devDependencies', 'dependencies', 'optionalDependencies']) {
        for (const [name, spec] of Object.entries(pkg[field] || {})) {
          if (typeof spec === 'string' && spec.startsWith(`npm:${pkgName}@`) && !names.includes(name)) names.push(name);
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
    'transformer to it. Either install TypeScript 6 beside it for ttsc (`npm install -D typescript-6@npm:typescript@6 ts-patch@4`; ' +
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
      dir = aliasesOf('typescript', cwd)
        .map((name) => packageDir(name, cwd))
        .find((d) => d && typescriptVersion(d) && SUPPORTED[major(typescriptVersion(d))]);
      if (!dir) throw new Error(noJsApi(project, typescriptVersion(project)));
    }
    dir = dir || packageDir('typescript', ownDir);
    if (!dir) throw new Error('cannot find TypeScript: install it in the project (`npm install -D typescript`)');
  }
  const version = typescriptVersion(dir);
  if (!version) throw new Error(`${dir} is not a TypeScript package`);
  if (!hasJsApi(version)) throw new Error(noJsApi(dir, version));
  if (!SUPPORTED[major(version)])
    throw new Error(
      `${dir} is TypeScript ${version}; ttsc supports TypeScript ${LOWEST} to ${HIGHEST}: ` +
        '`npm install -D typescript@6 ts-patch@4` (or typescript@5 ts-patch@3)',
    );
  if (!fs.existsSync(path.join(dir, 'lib', 'tsc.js'))) throw new Error(`${dir} (TypeScript ${version}) has no lib/tsc.js`);
  return { dir, version };
}

/** The version of the `ts-patch` package in `dir`, or undefined. */
function tsPatchVersion(dir) {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return pkg.name === 'ts-patch' && typeof pkg.version === 'string' ? pkg.version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Returns `{ dir, version }` of the ts-patch for TypeScript `tsVersion`: the project's, an `npm:ts-patch@…`
 * alias, or tsnn's own, the first whose major matches; throws an Error with a message for the user.
 */
function chooseTsPatch(tsVersion, cwd = process.cwd(), ownDir = __dirname) {
  const want = SUPPORTED[major(tsVersion)];
  const found = [packageDir('ts-patch', cwd), ...aliasesOf('ts-patch', cwd).map((name) => packageDir(name, cwd)), packageDir('ts-patch', ownDir)]
    .filter((d, i, all) => d && tsPatchVersion(d) && all.indexOf(d) === i)
    .map((dir) => ({ dir, version: tsPatchVersion(dir) }));
  const match = found.find((p) => major(p.version) === want);
  if (match) return match;
  const seen = found.length ? ` (found ${found.map((p) => `ts-patch ${p.version} at ${p.dir}`).join(', ')})` : '';
  throw new Error(
    `TypeScript ${tsVersion} needs ts-patch ${want}.x${seen}: \`npm install -D ts-patch@${want}\`` +
      (found.length ? ` (or, beside another ts-patch, \`npm install -D ts-patch-${want}@npm:ts-patch@${want}\`)` : ''),
  );
}

module.exports = { chooseTypeScript, chooseTsPatch, SUPPORTED };
