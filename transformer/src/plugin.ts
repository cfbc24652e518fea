/**
 * TypeScript language-service plugin: the transformer's TS900xx diagnostics as you type, in VS Code and
 * any tsserver editor. In the user's tsconfig.json:
 *
 *     "compilerOptions": { "plugins": [{ "name": "tsnn/plugin" }] }
 *
 * (`tsnn/plugin` is `plugin/index.js` of the package, which loads this file.) It runs the very analysis
 * the transformer runs (analyze.ts, one Analyzer per Program) on the file asked about and appends its
 * diagnostics to the semantic ones. Like every tsserver plugin it only affects the editor: `tsc` ignores
 * it, `ttsc` reports the same diagnostics at build time.
 */
import type * as ts from 'typescript';
import { fileDiagnostics } from './analyzers';

function init(modules: { typescript: typeof ts }): ts.server.PluginModule {
  const tsi = modules.typescript;

  function create(info: ts.server.PluginCreateInfo): ts.LanguageService {
    const inner = info.languageService;
    // Delegate everything (the documented plugin pattern), then replace the one method we extend.
    const proxy = Object.create(null) as ts.LanguageService;
    for (const k of Object.keys(inner) as (keyof ts.LanguageService)[]) {
      const member = inner[k];
      (proxy as any)[k] = typeof member === 'function' ? (...args: unknown[]) => (member as Function).apply(inner, args) : member;
    }
    proxy.getSemanticDiagnostics = (fileName: string): ts.Diagnostic[] => {
      const prior = inner.getSemanticDiagnostics(fileName);
      try {
        const program = inner.getProgram();
        const sf = program?.getSourceFile(fileName);
        if (!program || !sf) return prior;
        return [...prior, ...fileDiagnostics(tsi, program, sf)];
      } catch (e) {
        // A bug in the analysis must not take the editor's other diagnostics down with it.
        info.project?.projectService?.logger?.info(`tsnn/plugin: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        return prior;
      }
    };
    return proxy;
  }

  return { create };
}

export = init;
