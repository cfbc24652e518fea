/**
 * A program that uses tsnn, bundled for Node (esbuild --platform=node --bundle) and run from a directory with
 * no node_modules: a 512x512 matmul on webasm splits across worker threads, whose code must come with the
 * bundle (pool-worker.ts) rather than be resolved from disk (it once died with "Cannot find module
 * 'gpu.js'"). Its result must be bit-identical to the same program run unbundled.
 */
import { expect } from 'chai';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../helpers';
import { testDevices } from '../helpers';

const PROGRAM = (index: string) => `
const { rand, manualSeed, noGrad, backendFor } = require(${JSON.stringify(index)});
manualSeed(5);
const a = rand([512, 512], { device: 'webasm' });
const b = rand([512, 512], { device: 'webasm' });
const c = noGrad(() => a.matmul(b));
const data = c.dataSync();
process.stdout.write(JSON.stringify({
  splitRuns: backendFor('webasm').threadStats.splitRuns,
  bits: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
  corner: data[0],
}));
`;

function runNode(file: string, cwd: string): Promise<{ status: number | null; output: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    // split every kernel across 3 threads (2 workers), whatever this machine's core count and timing
    // matmul on the gpu.js kernel, which splits over the pool (the direct WebAssembly one runs on one thread)
    const env = { ...process.env, TSNN_THREADS: '3', TSNN_SPLIT: 'always', TSNN_WASM_MATMUL: 'gpujs' };
    const child = spawn(process.execPath, [file], { cwd, env });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (d) => ((stdout += d), (output += d)));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output, stdout }));
  });
}

describe('bundled for Node: worker threads carry their own code', function () {
  this.timeout(180_000);
  let ws: string;

  before(function () {
    if (!testDevices().includes('webasm')) this.skip();
    ws = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-bundle-'));
  });
  after(() => {
    if (ws) fs.rmSync(ws, { recursive: true, force: true });
  });

  it('a 512x512 matmul on webasm with threads: same bits as unbundled', async () => {
    const entry = path.join(ws, 'entry.js');
    fs.writeFileSync(entry, PROGRAM(path.join(repoRoot(), 'dist/src/index.js')));
    const esbuild = require('esbuild');
    const outDir = path.join(ws, 'app'); // no node_modules here or above: nothing to resolve at run time
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      outfile: path.join(outDir, 'app.js'),
      external: ['gl'], // headless-gl is a native addon: bundlers leave it out (gpu.js loads it in a try/catch)
      logLevel: 'silent',
    });

    const [bundled, plain] = await Promise.all([runNode(path.join(outDir, 'app.js'), outDir), runNode(entry, ws)]);
    expect(bundled.status, bundled.output).to.equal(0);
    expect(plain.status, plain.output).to.equal(0);
    const b = JSON.parse(bundled.stdout);
    const p = JSON.parse(plain.stdout);
    expect(b.splitRuns, 'the bundled matmul ran on worker threads').to.be.greaterThan(0);
    expect(p.splitRuns).to.be.greaterThan(0);
    expect(b.corner).to.be.a('number').and.to.be.greaterThan(100); // a real product of 512-long rows of U(0,1)
    expect(b.bits).to.equal(p.bits);
  });
});
