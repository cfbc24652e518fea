// ESLint flat config: typescript-eslint's recommended rules, syntax-only (no type information, so it stays fast).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { noImportCycle } from './scripts/import-cycles.mjs';

// Node's globals for the plain .js scripts (TypeScript files get theirs from @types/node; no-undef is off there).
const nodeGlobals = Object.fromEntries(
  'process console Buffer require module exports __dirname __filename setTimeout clearTimeout setImmediate URL'
    .split(' ')
    .map((name) => [name, 'readonly']),
);

export default defineConfig(
  {
    // Build output and .gitignore'd caches, generated API docs, and the transformer tests' input programs (deliberate errors).
    ignores: [
      'dist/',
      'transformer/dist/',
      'node_modules/',
      'out/',
      '.gl/',
      '.whl/',
      'docs/api/',
      'test/transformer/fixtures/',
      'test/**/fixtures-ts/',
      // generated (scripts/gen-onnx-descriptor.js; a test checks it is byte-identical to the generator's output)
      'src/onnx/onnx-descriptor.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // `any` marks the untyped gpu.js boundary and Module's dynamic fields; tsconfig's strict mode already forbids implicit any.
      '@typescript-eslint/no-explicit-any': 'off',
      // `Function` is the type of a class constructor used as a registry key and walked up its prototype chain (nn/registry.ts).
      '@typescript-eslint/no-unsafe-function-type': 'off',
      // `_`-prefixed names are deliberately unused (callback positions, destructuring that drops a field).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // No import circles in the library: a module and everything it imports at run time form a tree, so load
    // order never hands a module a half-initialised import. (Type-only imports: tsnn/no-import-cycle below.)
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: { 'import-x/no-cycle': 'error' },
  },
  {
    // import-x/no-cycle always skips `import type`: this rule counts type-only imports too (a circle of types
    // is still two modules that each need the other's declarations).
    files: ['src/**/*.ts'],
    plugins: { tsnn: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: { 'tsnn/no-import-cycle': ['error', { root: 'src' }] },
  },
  {
    files: ['src/nn/module.ts'],
    rules: {
      // `interface Module` adds the call signature to `class Module` (modules are callable: `net(x)`).
      '@typescript-eslint/no-unsafe-declaration-merging': 'off',
    },
  },
  {
    files: ['transformer/src/**/*.ts', 'test/**/*.ts'],
    rules: {
      // The transformer loads the caller's TypeScript lazily (the instance ts-patch hands it), never a fixed import;
      // tests load optional native packages (gl) and freshly built plugin files only where present.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests strip and match ANSI colour escapes in compiler output.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: nodeGlobals },
    rules: {
      // bin/ and test/*.js are plain CommonJS scripts that node runs directly.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);
