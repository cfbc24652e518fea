/**
 * The supported compiler range, installed apart in test/compilers (its own package.json; test/run.js runs
 * `npm ci` there when missing): the lowest and highest TypeScript tsnn supports, each with its ts-patch.
 * Missing installs fail the tests that need them (a range nobody runs is not a tested range).
 */
import * as fs from 'fs';
import * as path from 'path';

export interface Compiler {
  /** 'lowest' | 'highest' */
  name: string;
  /** TypeScript package directory */
  ts: string;
  /** ts-patch package directory (the major that patches this TypeScript) */
  tsPatch: string;
  version: string;
  tsPatchVersion: string;
}

function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test/compilers/package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no tsnn checkout above ${__dirname}`);
  }
}

export const COMPILERS_DIR = path.join(findRepoRoot(), 'test/compilers/node_modules');

const RANGE: [string, string, string][] = [
  ['lowest', 'typescript-5.0', 'ts-patch-3'],
  ['highest', 'typescript-6', 'ts-patch-4'],
];

const versionOf = (dir: string): string => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;

/** The lowest and highest supported compilers; throws (with what to run) if test/compilers is not installed. */
export function compilerRange(): Compiler[] {
  return RANGE.map(([name, ts, patch]) => {
    const dirs = [path.join(COMPILERS_DIR, ts), path.join(COMPILERS_DIR, patch)];
    for (const d of dirs) {
      if (!fs.existsSync(path.join(d, 'package.json'))) throw new Error(`${d} is missing: run \`npm ci --prefix test/compilers --ignore-scripts\``);
    }
    return { name, ts: dirs[0], tsPatch: dirs[1], version: versionOf(dirs[0]), tsPatchVersion: versionOf(dirs[1]) };
  });
}
