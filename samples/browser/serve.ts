/**
 * `npm run demo`: serves the browser demo with esbuild's serve mode (rebuilds the page bundle on reload when
 * a source changed) at http://127.0.0.1:8000/ by default.
 *   npm run demo -- --port 8080 --host 0.0.0.0
 */
import * as path from 'path';
import { Command, InvalidArgumentError } from 'commander';
import * as esbuild from 'esbuild';
import { demoBuildOptions, prepareSite, repoRoot } from './site';

const program = new Command()
  .name('npm run demo --')
  .description('Serve the tsnn browser demo: MNIST training in the page, a live chart, draw-a-digit prediction.')
  .option(
    '-p, --port <n>',
    'port to listen on',
    (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be 0..65535, got '${v}'`);
      return n;
    },
    8000,
  )
  .option('--host <addr>', 'address to listen on', '127.0.0.1');

async function main(): Promise<void> {
  const opts = program.parse().opts<{ port: number; host: string }>();
  const www = path.join(repoRoot(), 'dist', 'samples', 'browser', 'www');
  prepareSite(www);
  const ctx = await esbuild.context(demoBuildOptions(www));
  const { hosts, port } = await ctx.serve({ servedir: www, host: opts.host, port: opts.port });
  for (const h of hosts) console.log(`tsnn demo: http://${h.includes(':') ? `[${h}]` : h}:${port}/  (Ctrl-C stops)`);
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  process.exit(1);
});
