/** loadFile/saveFile I/O limits: only regular files, header cap before reading, atomic durable saves. */
import { expect } from 'chai';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { tensor } from '../../src';
import { saveFile, saveFileAsync, loadFile, loadFileAsync, MAX_HEADER_SIZE } from '../../src/io';
import { repoRoot } from '../helpers';

const dist = path.join(repoRoot(), 'dist/src/index.js');

/**
 * Runs `code` (with `t` = the built package) in a child node process and returns what it printed. A hang
 * (the old loadFile('/dev/zero') read forever) ends at the guard and fails the test, instead of stalling the run.
 */
function child(code: string): { out: string; status: number | null } {
  const r = spawnSync(process.execPath, ['-e', `const t = require(${JSON.stringify(dist)});\n${code}`], { encoding: 'utf8', timeout: 30_000 });
  return { out: `${r.stdout}${r.stderr}`, status: r.error ? null : r.status };
}

/** A child process's maximum resident memory (MiB) while loading `file`, and the error it got. */
function loadInChild(file: string): { message: string; maxRssMiB: number } {
  const { out } = child(`
    let message = 'no error';
    try { t.loadFile(${JSON.stringify(file)}, { device: 'cpu' }); } catch (e) { message = e.message; }
    // VmHWM: this process's own peak (getrusage's maxRSS also counts the parent's size at fork, which is the
    // whole mocha process here); resourceUsage where there is no /proc
    const hwm = (() => { try { return /VmHWM:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1] / 1024; } catch { return null; } })();
    console.log(JSON.stringify({ message, maxRssMiB: hwm ?? process.resourceUsage().maxRSS / 1024 }));`);
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`child did not report: ${out.slice(-500)}`);
  }
}

describe('io: file limits', () => {
  let dir = '';
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsnn-files-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('loadFile reads only regular files', () => {
    it('/dev/zero is refused at once (it used to be read until memory ran out)', function () {
      if (!fs.existsSync('/dev/zero')) this.skip();
      const { message } = loadInChild('/dev/zero');
      expect(message).to.match(/^safetensors: \/dev\/zero: could not read the file: not a regular file \(a character device\)/);
    });

    it('a FIFO is refused without blocking in open(); a directory is refused', async function () {
      const fifo = path.join(dir, 'pipe.safetensors');
      if (spawnSync('mkfifo', [fifo]).status !== 0) this.skip();
      const { out } = child(`
        try { t.loadFile(${JSON.stringify(fifo)}); } catch (e) { console.log(e.message); }
        t.loadFileAsync(${JSON.stringify(fifo)}).catch((e) => console.log(e.message));`);
      expect(out).to.include('not a regular file (a FIFO (named pipe))');
      expect(out.match(/FIFO/g)).to.have.length(2);
      expect(() => loadFile(dir)).to.throw(/not a regular file \(a directory\)/);
      let asyncErr: Error | null = null;
      await loadFileAsync(dir).catch((e) => (asyncErr = e));
      expect(asyncErr!.message).to.match(/not a regular file \(a directory\)/);
    });

    it('a header length over the cap is refused after reading 8 bytes, not the whole file', () => {
      // a sparse 1.5 GB file whose first 8 bytes claim a header of twice the cap
      const file = path.join(dir, 'huge.safetensors');
      const fd = fs.openSync(file, 'w');
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(2 * MAX_HEADER_SIZE));
      fs.writeSync(fd, head, 0, 8, 0);
      fs.ftruncateSync(fd, 1.5 * 2 ** 30);
      fs.closeSync(fd);
      const { message, maxRssMiB } = loadInChild(file);
      fs.unlinkSync(file);
      expect(message).to.match(/header length 200000000 is larger than the limit of 100000000 bytes/);
      // reading it all first (as before) takes the file's 1.5 GB into memory; the child's own peak (VmHWM)
      // is ~70 MiB here (the ~610-1,100 MiB seen before were getrusage counting the parent mocha at fork)
      expect(maxRssMiB).to.be.below(512);
    });
  });

  describe('saveFile', () => {
    const sd = () => ({ w: tensor([1, 2, 3], { device: 'cpu' }) });
    const temps = (d: string) => fs.readdirSync(d).filter((f) => f.includes('.tmp-'));

    /** The pid of a process that has exited. */
    function deadPid(): number {
      const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
      return Number(r.stdout.trim());
    }

    for (const [name, save] of [
      ['saveFile', saveFile],
      ['saveFileAsync', saveFileAsync],
    ] as const) {
      it(`${name} removes temporary files left by a save that was killed mid-write, and only those`, async () => {
        const d = fs.mkdtempSync(path.join(dir, 'stale-'));
        const file = path.join(d, 'model.safetensors');
        const dead = deadPid();
        const stale = [`model.safetensors.tmp-${dead}-0123456789abcdef`, `model.safetensors.tmp-${dead}-k3j4h5g6`]; // ours, and the old naming
        const kept = [
          `model.safetensors.tmp-${process.pid}-0123456789abcdef`, // a live writer's
          `other.safetensors.tmp-${dead}-0123456789abcdef`, // another file's
          `model.safetensors.tmp-notours`,
        ];
        for (const f of [...stale, ...kept]) fs.writeFileSync(path.join(d, f), 'partial');
        fs.symlinkSync('/etc/hostname', path.join(d, `model.safetensors.tmp-${dead}-fedcba9876543210`)); // not a regular file: left alone
        kept.push(`model.safetensors.tmp-${dead}-fedcba9876543210`);
        await save(sd(), file);
        expect(temps(d).sort()).to.deep.equal([...kept].sort());
        expect(Array.from(loadFile(file, { device: 'cpu' }).w.dataSync())).to.deep.equal([1, 2, 3]);
        // a save that fails (renaming a file over a non-empty directory) leaves none of its own
        const target = path.join(d, 'is-a-dir');
        fs.mkdirSync(target);
        fs.writeFileSync(path.join(target, 'x'), 'x');
        let err: Error | null = null;
        await (async () => save(sd(), target))().catch((e) => (err = e));
        expect(err!.message).to.match(/could not write the file/);
        expect(temps(d).sort()).to.deep.equal([...kept].sort());
      });
    }

    it('fsyncs the file before the rename and the directory after it', () => {
      const d = fs.mkdtempSync(path.join(dir, 'sync-'));
      const file = path.join(d, 'model.safetensors');

      const realFs = require('fs');
      const events: string[] = [];
      const { fsyncSync, renameSync } = realFs;
      realFs.fsyncSync = (fd: number) => {
        const st = fs.fstatSync(fd);
        events.push(st.isDirectory() ? 'fsync dir' : `fsync file of ${st.size} bytes`);
        return fsyncSync(fd);
      };
      realFs.renameSync = (a: string, b: string) => {
        events.push('rename');
        return renameSync(a, b);
      };
      try {
        saveFile(sd(), file);
      } finally {
        realFs.fsyncSync = fsyncSync;
        realFs.renameSync = renameSync;
      }
      const size = fs.statSync(file).size;
      expect(events).to.deep.equal([`fsync file of ${size} bytes`, 'rename', 'fsync dir']);
    });
  });
});
