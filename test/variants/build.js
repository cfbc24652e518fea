#!/usr/bin/env node
/**
 * `npm run build:variants`: compiles samples/chapter/models.ts + test/variants/check.ts (and the src/ they
 * import) three ways, into dist/variants/<variant>/:
 *   standard      plain tsc, standard decorators           (tsconfig.standard.json)
 *   experimental  plain tsc, experimentalDecorators         (tsconfig.experimental.json)
 *   ttsc          node bin/ttsc.js (the tsnn transformer)   (tsconfig.ttsc.json)
 * test/variants/variants.test.ts runs each build's check.js and compares them.
 *
 * Errors in samples/chapter/ or test/variants/ fail the build. Errors elsewhere (work in progress in src/,
 * including tsnn transformer diagnostics TS900xx on src/ layers) are printed as warnings: tsc emits anyway
 * and the checks only need the emitted JS. `--if-stale` skips variants whose output is newer than all of
 * their inputs.
 */
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '../..');
const TSC = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
const TTSC = path.join(ROOT, 'bin/ttsc.js');
const VARIANTS = {
  standard: [TSC, '-p', 'test/variants/tsconfig.standard.json'],
  experimental: [TSC, '-p', 'test/variants/tsconfig.experimental.json'],
  ttsc: [TTSC, '-p', 'test/variants/tsconfig.ttsc.json'],
};
const OWN = /^(samples\/chapter\/|test\/variants\/)/;

const outDir = (v) => path.join(ROOT, 'dist/variants', v);
const stampOf = (v) => path.join(outDir(v), '.built');

function newestInput() {
  let newest = 0;
  const walk = (p) => {
    if (!fs.existsSync(p)) return;
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const f of fs.readdirSync(p)) walk(path.join(p, f));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['src', 'samples/chapter', 'test/variants', 'transformer/dist', 'bin']) walk(path.join(ROOT, p));
  return newest;
}

function run(variant, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ variant, status, out }));
  });
}

async function main() {
  const ifStale = process.argv.includes('--if-stale');
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const newest = newestInput();
  const todo = Object.keys(VARIANTS)
    .filter((v) => !only.length || only.includes(v))
    .filter((v) => !ifStale || !fs.existsSync(stampOf(v)) || fs.statSync(stampOf(v)).mtimeMs < newest);
  if (!todo.length) {
    console.log('build:variants: up to date');
    return 0;
  }
  const results = await Promise.all(todo.map((v) => run(v, VARIANTS[v])));
  let failed = false;
  for (const { variant, status, out } of results) {
    const lines = out.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn'));
    const errors = lines.filter((l) => / error TS\d+:/.test(l));
    const fatal = errors.filter((l) => OWN.test(l));
    const check = path.join(outDir(variant), 'test/variants/check.js');
    if (fatal.length || !fs.existsSync(check) || (status !== 0 && !errors.length)) {
      failed = true;
      console.error(`build:variants: ${variant} FAILED (exit ${status})\n${lines.map((l) => `  ${l}`).join('\n')}`);
      continue;
    }
    fs.writeFileSync(stampOf(variant), new Date().toISOString() + '\n');
    console.log(`build:variants: ${variant} -> ${path.relative(ROOT, outDir(variant))}`);
    if (errors.length)
      console.log(
        `  warning: ${errors.length} error(s) outside samples/chapter and test/variants (JS emitted anyway):\n${errors.map((l) => `    ${l}`).join('\n')}`,
      );
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
