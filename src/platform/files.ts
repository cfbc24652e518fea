/**
 * File I/O for saveFile/loadFile (Node only): reading only regular files, writing atomically and durably.
 * The browser build swaps in files.browser.ts, whose functions say to use serialize/deserialize/loadUrl.
 *
 * Reading: the file is opened non-blocking (a FIFO would otherwise block the open until a writer comes)
 * and must be a regular file: `/dev/zero` or a pipe never ends. `checkHead` sees the first bytes and the
 * size before the rest is read, so a file that is not what the caller expects is refused without reading
 * gigabytes.
 *
 * Writing: to `<path>.tmp-<pid>-<random>` in the target's directory, created exclusively (O_EXCL: nothing
 * planted at that name is followed or overwritten), fsynced, renamed over `path`, then the directory is
 * fsynced so the rename survives a crash. A failed write removes its temporary file; temporary files of
 * this naming left by a process that died mid-save (killed, power loss) are removed by the next save
 * into that directory, if they are regular files owned by this user and their pid is gone.
 */
import * as fs from 'fs';
import * as nodePath from 'path';
import { randomBytes } from 'crypto';

/** How many leading bytes `checkHead` is shown. */
export const HEAD_BYTES = 8;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const NONBLOCK = fs.constants.O_NONBLOCK ?? 0;

export function openRegular(path: string): { fd: number; size: number } {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`not a regular file (${kindOf(st)})`);
    return { fd, size: st.size };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** The whole of a regular file, after `checkHead(first bytes, size)` accepted its start. */
export function readRegularFile(path: string, checkHead?: (head: Uint8Array, size: number) => void): Uint8Array {
  const { fd, size } = openRegular(path);
  try {
    const bytes = Buffer.allocUnsafe(Math.min(size, HEAD_BYTES));
    readFully(fd, bytes, 0);
    checkHead?.(bytes, size);
    if (size <= HEAD_BYTES) return bytes;
    const all = Buffer.allocUnsafe(size);
    bytes.copy(all);
    readFully(fd, all, bytes.length);
    return all;
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads buf[from..] at the same file position; a file that shrank meanwhile is an error, not zeros. */
function readFully(fd: number, buf: Uint8Array, from: number): void {
  for (let at = from; at < buf.length;) {
    const n = fs.readSync(fd, buf, at, buf.length - at, at);
    if (n === 0) throw new Error(`file ended after ${at} of ${buf.length} bytes (changed while being read?)`);
    at += n;
  }
}

export async function readRegularFileAsync(path: string, checkHead?: (head: Uint8Array, size: number) => void): Promise<Uint8Array> {
  const handle = await fs.promises.open(path, fs.constants.O_RDONLY | NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`not a regular file (${kindOf(st)})`);
    const head = Buffer.allocUnsafe(Math.min(st.size, HEAD_BYTES));
    await readFullyAsync(handle, head, 0);
    checkHead?.(head, st.size);
    if (st.size <= HEAD_BYTES) return head;
    const all = Buffer.allocUnsafe(st.size);
    head.copy(all);
    await readFullyAsync(handle, all, head.length);
    return all;
  } finally {
    await handle.close();
  }
}

async function readFullyAsync(handle: fs.promises.FileHandle, buf: Uint8Array, from: number): Promise<void> {
  for (let at = from; at < buf.length;) {
    const { bytesRead } = await handle.read(buf, at, buf.length - at, at);
    if (bytesRead === 0) throw new Error(`file ended after ${at} of ${buf.length} bytes (changed while being read?)`);
    at += bytesRead;
  }
}

/**
 * The first bytes of a regular file (at most `max`) and its size, without reading the rest: readHeader
 * reads the 8-byte length first, then just the header.
 */
export function readRegularPrefix(path: string, prefix: (read: (n: number) => Uint8Array, size: number) => void): void {
  const { fd, size } = openRegular(path);
  try {
    prefix((n) => {
      const buf = Buffer.alloc(Math.min(size, n));
      fs.readSync(fd, buf, 0, buf.length, 0);
      return buf;
    }, size);
  } finally {
    fs.closeSync(fd);
  }
}

// ours: 16 hex digits; earlier versions wrote 8 base-36 characters
const TMP_PATTERN = /^(.*)\.tmp-(\d+)-(?:[0-9a-f]{16}|[0-9a-z]{8})$/;

function tmpPath(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(8).toString('hex')}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/** Removes temporary files of our naming for `path` whose writer died mid-save (see the top). */
export function removeStaleTemps(path: string): string[] {
  const dir = nodePath.dirname(path);
  const base = nodePath.basename(path);
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TMP_PATTERN.exec(name);
    if (!m || m[1] !== base || pidAlive(Number(m[2]))) continue;
    const full = nodePath.join(dir, name);
    try {
      const st = fs.lstatSync(full);
      if (!st.isFile() || (uid !== null && st.uid !== uid)) continue;
      fs.unlinkSync(full);
      removed.push(full);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/** fsync of a directory, so a rename in it is durable; not possible everywhere (Windows), and then skipped. */
function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // EISDIR / EPERM / EINVAL where directories cannot be synced
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `bytes` to `path` atomically and durably (see the top). */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  removeStaleTemps(path);
  const tmp = tmpPath(path);
  const fd = fs.openSync(tmp, 'wx', 0o666);
  try {
    try {
      for (let at = 0; at < bytes.length;) at += fs.writeSync(fd, bytes, at, bytes.length - at);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      /* nothing to clean */
    }
    throw e;
  }
  syncDir(nodePath.dirname(path));
}

export async function writeFileAtomicAsync(path: string, bytes: Uint8Array): Promise<void> {
  removeStaleTemps(path);
  const tmp = tmpPath(path);
  const handle = await fs.promises.open(tmp, 'wx', 0o666);
  try {
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, path);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  syncDir(nodePath.dirname(path));
}
