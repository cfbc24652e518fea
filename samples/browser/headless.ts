/**
 * Headless Chromium for the browser test and the browser bench: the system's Chromium (Debian package
 * `chromium`; never a downloaded one) driven by playwright-core, and a static server (esbuild's) for a directory.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import type { Browser, Page } from 'playwright-core';

/** The Chromium binary: $TSNN_CHROMIUM, else the first of chromium / chromium-browser / google-chrome on PATH. */
export function findChromium(): string | null {
  const fromEnv = process.env.TSNN_CHROMIUM;
  if (fromEnv) return fs.existsSync(fromEnv) ? fromEnv : null;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

export const NO_CHROMIUM = 'no Chromium found (install the Debian package `chromium`, or set TSNN_CHROMIUM)';

/** Headless Chromium with WebGL on SwiftShader where no GPU exists (the software renderer is opt-in since Chromium 137). */
export async function launchChromium(executablePath: string): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
}

/** Serves `dir` over HTTP on 127.0.0.1 (a free port from 8000 up); `stop()` ends it. */
export async function serveDir(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const esbuild = await import('esbuild');
  const ctx = await esbuild.context({});
  const { port } = await ctx.serve({ servedir: path.resolve(dir), host: '127.0.0.1' });
  return { url: `http://127.0.0.1:${port}/`, stop: () => ctx.dispose() };
}

/** Collects uncaught page errors, so a test can fail on them instead of timing out. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}
