#!/usr/bin/env node
/**
 * `npm test`: runs the mocha suite over the compiled tests (dist/test). Where the `gl` package is
 * installed but no X display exists, re-runs itself under xvfb-run so the headless-gl backend is tested.
 */
const { spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

function hasGl() {
  try {
    require.resolve('gl');
    return fs.existsSync(path.join(path.dirname(require.resolve('gl/package.json')), 'build/Release/webgl.node'));
  } catch {
    return false;
  }
}
const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

if (!process.env.DISPLAY && !process.env.TSNN_NO_XVFB && hasGl() && which('xvfb-run')) {
  const r = spawnSync('xvfb-run', ['-a', '-s', '-ac -screen 0 1280x1024x24', process.execPath, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TSNN_NO_XVFB: '1' },
  });
  process.exit(r.status ?? 1);
}

const root = path.resolve(__dirname, '..');

// The supported compiler range (lowest and highest TypeScript, each with its ts-patch) is installed apart,
// from its own lockfile, so a fresh clone's `npm ci && npm test` tests it too (test/transformer/compilers.ts).
const compilers = path.join(root, 'test/compilers');
if (!fs.existsSync(path.join(compilers, 'node_modules'))) {
  console.log('installing the supported compiler range into test/compilers (npm ci)');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['ci', '--prefix', compilers, '--ignore-scripts', '--no-audit', '--no-fund'], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { deviceReport } = require(path.join(root, 'dist/src/index.js'));
console.log('tsnn test run — devices here:');
for (const d of deviceReport())
  console.log(`  ${d.device.padEnd(7)} ${d.ok ? 'available' : 'unavailable'}${d.renderer ? ` (${d.renderer})` : ''}${d.ok ? '' : `: ${d.why}`}`);

const mocha = require.resolve('mocha/bin/mocha.js');
const files = process.argv.slice(2).length ? process.argv.slice(2) : ['dist/test/**/*.test.js'];
const r = spawnSync(process.execPath, [mocha, '--timeout', '60000', '--reporter', 'spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
