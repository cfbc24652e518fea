/**
 * The on-disk store of generated kernel artefacts (Node only; kernel-store.browser.ts has none): a second
 * process finds the WebAssembly bytes of a kernel the first one generated and skips gpu.js's analysis and
 * code generation (src/backend/wasm-artefacts.ts decides what is stored and checks what comes back).
 *
 * Where: setBackendOptions({ kernelCacheDir }) / TSNN_KERNEL_CACHE_DIR (a directory, or false / 'off' for
 * none), else $XDG_CACHE_HOME/tsnn/kernels (absolute XDG_CACHE_HOME only), else ~/.cache/tsnn/kernels.
 * Never a shared path such as /tmp: what is read back here becomes code this process runs, so another user
 * must not be able to plant it. The directory is created 0700 and refused (the store is then off, with one
 * warning) unless it is a real directory (not a symlink) owned by this uid and not group/world-writable.
 *
 * Entries: `<sha256(key)>.bin` = MAGIC, sha256(key hash + payload), payload. A read checks the magic and
 * the digest (a truncated, corrupt or renamed file is a miss, and the caller's fresh artefact overwrites
 * it); files are opened without following symlinks, must be regular files of this uid and at most
 * MAX_ENTRY bytes. Writes go to a temporary file in the same directory (created exclusively, 0600) that is
 * renamed over the entry, so a reader never sees half a file. No fsync: a torn entry fails the digest.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as nodePath from 'path';
import { createHash, randomBytes } from 'crypto';
import { option } from './options';
import { readEnv } from './env';

const MAGIC = Buffer.from('TSNNKC1\n', 'latin1');
const DIGEST = 32;
/** Largest entry read back (a kernel module is a few KB; anything this big is not ours). */
export const MAX_ENTRY = 16 << 20;

/** Counters for tests and the first-step bench. */
export const kernelStoreStats = { reads: 0, hits: 0, misses: 0, rejected: 0, writes: 0, writeErrors: 0 };

export interface KernelStore {
  readonly dir: string;
  /** The verified payload stored under `key`, or null (absent or rejected). */
  get(key: string): Uint8Array | null;
  /** Stores `payload` under `key` (atomically; a failure only counts, the store is a cache). */
  put(key: string, payload: Uint8Array): void;
}

/** sha256 hex of a string (the entry name of a key). */
export function hashKey(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The directory the store uses now (option, environment, default), or null when it is off. */
export function kernelStoreDir(): string | null {
  const set = option('kernelCacheDir');
  if (set === false) return null;
  if (typeof set === 'string') return nodePath.resolve(set);
  const xdg = readEnv('XDG_CACHE_HOME');
  const base = xdg && nodePath.isAbsolute(xdg) ? xdg : nodePath.join(os.homedir(), '.cache');
  return nodePath.join(base, 'tsnn', 'kernels');
}

/** Why `dir` may not hold kernels (created 0700 where missing), or null when it may. */
export function checkStoreDir(dir: string): string | null {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (uid === null) return 'this platform has no user ids to check the directory owner against';
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    return `cannot create it (${(e as Error).message})`;
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    return `cannot stat it (${(e as Error).message})`;
  }
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== uid) return `it is owned by uid ${st.uid}, not by this process's uid ${uid}`;
  if ((st.mode & 0o022) !== 0) return `it is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}

const opened = new Map<string, KernelStore | null>();
/** What the last store lookup refused, for tests and the warning. */
export const kernelStoreRefusal: { dir: string | null; why: string | null } = { dir: null, why: null };

/** The store in the configured directory, or null where it is off or that directory is refused. */
export function kernelStore(): KernelStore | null {
  const dir = kernelStoreDir();
  if (dir === null) return null;
  if (opened.has(dir)) return opened.get(dir)!;
  const why = checkStoreDir(dir);
  const store = why === null ? openStore(dir) : null;
  if (why !== null) {
    kernelStoreRefusal.dir = dir;
    kernelStoreRefusal.why = why;
    console.warn(`tsnn: not caching compiled kernels in ${dir}: ${why} (setBackendOptions({ kernelCacheDir }) moves or turns off this cache)`);
  }
  opened.set(dir, store);
  return store;
}

/** Forgets which directories were checked (tests change permissions between lookups). */
export function resetKernelStores(): void {
  opened.clear();
  kernelStoreRefusal.dir = kernelStoreRefusal.why = null;
}

function digestOf(name: string, payload: Uint8Array): Buffer {
  return createHash('sha256').update(name).update(payload).digest();
}

const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const NONBLOCK = fs.constants.O_NONBLOCK ?? 0;

function openStore(dir: string): KernelStore {
  const uid = process.getuid!();
  const entryPath = (name: string) => nodePath.join(dir, `${name}.bin`);
  return {
    dir,
    get(key: string): Uint8Array | null {
      kernelStoreStats.reads++;
      const name = hashKey(key);
      let fd: number;
      try {
        fd = fs.openSync(entryPath(name), fs.constants.O_RDONLY | NOFOLLOW | NONBLOCK);
      } catch {
        kernelStoreStats.misses++;
        return null;
      }
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile() || st.uid !== uid || st.size > MAX_ENTRY || st.size < MAGIC.length + DIGEST) return reject();
        const all = Buffer.allocUnsafe(st.size);
        let at = 0;
        while (at < all.length) {
          const n = fs.readSync(fd, all, at, all.length - at, at);
          if (n <= 0) return reject();
          at += n;
        }
        if (!all.subarray(0, MAGIC.length).equals(MAGIC)) return reject();
        const payload = all.subarray(MAGIC.length + DIGEST);
        if (!digestOf(name, payload).equals(all.subarray(MAGIC.length, MAGIC.length + DIGEST))) return reject();
        kernelStoreStats.hits++;
        return payload;
      } catch {
        return reject();
      } finally {
        fs.closeSync(fd);
      }
    },
    put(key: string, payload: Uint8Array): void {
      const name = hashKey(key);
      const tmp = nodePath.join(dir, `.${name}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, 0o600);
        try {
          fs.writeSync(fd, Buffer.concat([MAGIC, digestOf(name, payload), payload]));
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(tmp, entryPath(name));
        kernelStoreStats.writes++;
      } catch {
        kernelStoreStats.writeErrors++;
        try {
          fs.unlinkSync(tmp);
        } catch {
          // nothing was created
        }
      }
    },
  };
}

function reject(): null {
  kernelStoreStats.rejected++;
  return null;
}
