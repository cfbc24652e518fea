'use strict';
/**
 * ttsc's start-up cache: the patched tsc source and V8's code cache for it.
 *
 * Both are executed, so they must be writable by nobody but the user. They live in the user's cache
 * directory (`$XDG_CACHE_HOME`, else ~/.cache; ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows)
 * under `tsnn/ttsc/`, never in the shared temp directory, where another user could create the
 * directory first and plant code (CWE-377/379).
 *
 * Anything unsafe is refused and ttsc does without the cache (the cache only saves start-up time):
 * - the cache base's real path must have no ancestor another user can change (each one owned by the
 *   user or root, and writable by group/others only when sticky, like /tmp);
 * - `tsnn/` and `tsnn/ttsc/` are created with mode 0700 and, checked with lstat, must be real
 *   directories (not symlinks) owned by the user and not writable by group or others;
 * - a cache file is opened with O_NOFOLLOW and checked on the open descriptor (fstat: a regular file
 *   owned by the user, not group/other-writable), so it cannot be swapped between check and read;
 * - each file carries the SHA-256 of its content, and the code cache also that of the source it was
 *   made from. The code cache needs that binding: V8 accepts cachedData for any source of the same
 *   *length* and then runs the cached bytecode, not the source.
 * Files are written to a fresh O_EXCL temp name in the same directory (mode 0600) and renamed.
 *
 * On Windows, where there are no POSIX owners or modes, the per-user ACLs of %LOCALAPPDATA% protect
 * the cache; symlinks are still refused.
 */

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const UID = typeof process.getuid === 'function' ? process.getuid() : undefined;
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW || 0;
const SOURCE_MAGIC = '// tsnn-ttsc-cache sha256:';
const CODE_MAGIC = 'tsnn-ttsc-v8 ';

/** Set TSNN_TTSC_DEBUG=1 to see why the cache is used or not. Returns undefined: `return debug(why)` gives up. */
function debug(message) {
  if (process.env.TSNN_TTSC_DEBUG) process.stderr.write(`ttsc: cache: ${message}\n`);
}

class Refused extends Error {}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest('hex');
}

function userCacheBase() {
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return xdg;
  if (process.platform === 'win32') return process.env.LOCALAPPDATA || path.join(os.homedir(), 'AppData', 'Local');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Caches');
  return path.join(os.homedir(), '.cache');
}

const mode = (st) => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** A directory or file of ours: owned by the user, writable by nobody else. */
function checkOwned(p, st) {
  if (UID === undefined) return;
  if (st.uid !== UID) throw new Refused(`${p} is owned by uid ${st.uid}, not by this user (uid ${UID})`);
  if (st.mode & 0o022) throw new Refused(`${p} is writable by group or others (mode ${mode(st)})`);
}

/** No ancestor of `real` (a real path) can be changed by another user, so nobody can swap what is below. */
function checkAncestors(real) {
  if (UID === undefined) return;
  for (let dir = real; ; dir = path.dirname(dir)) {
    const st = fs.statSync(dir);
    if (st.uid !== UID && st.uid !== 0) throw new Refused(`${dir} is owned by uid ${st.uid} (neither this user nor root)`);
    if (st.mode & 0o022 && !(st.mode & 0o1000)) throw new Refused(`${dir} is writable by group or others (mode ${mode(st)})`);
    if (path.dirname(dir) === dir) return;
  }
}

/** Creates `dir` (mode 0700) unless it exists, then checks it: a real directory of ours. */
function ensureOwnDir(dir) {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
  }
  const st = fs.lstatSync(dir);
  if (st.isSymbolicLink()) throw new Refused(`${dir} is a symbolic link`);
  if (!st.isDirectory()) throw new Refused(`${dir} is not a directory`);
  checkOwned(dir, st);
}

/** The content of `file` if it is a regular file of ours (checked on the open descriptor), else undefined. */
function readOwnFile(file) {
  let fd;
  try {
    if (fs.lstatSync(file).isSymbolicLink()) throw new Refused(`${file} is a symbolic link`);
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
  } catch (e) {
    if (e instanceof Refused) throw e;
    if (e.code === 'ENOENT') return undefined;
    if (e.code === 'ELOOP') throw new Refused(`${file} is a symbolic link`);
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Refused(`${file} is not a regular file`);
    checkOwned(file, st);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `header` + `body` → `dir/name`, through a new temp file (O_EXCL, 0600) in the same directory and a rename. */
function writeAtomic(dir, name, header, body) {
  const tmp = path.join(dir, `${name}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    try {
      fs.writeFileSync(fd, header);
      fs.writeFileSync(fd, body);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(dir, name));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Splits `<header line>\n<body>`; undefined unless the line starts with `magic`. */
function splitHeader(buf, magic) {
  const nl = buf.indexOf(10);
  if (nl < 0) return undefined;
  const header = buf.toString('latin1', 0, nl);
  return header.startsWith(magic) ? { fields: header.slice(magic.length), body: buf.subarray(nl + 1) } : undefined;
}

class StartupCache {
  /** The cache for `key` (hex), or undefined (and why, under TSNN_TTSC_DEBUG) where it is not safe. */
  static open(key) {
    try {
      const base = userCacheBase();
      fs.mkdirSync(base, { recursive: true, mode: 0o700 });
      const real = fs.realpathSync(base);
      checkAncestors(real);
      const dir = path.join(real, 'tsnn');
      ensureOwnDir(dir);
      ensureOwnDir(path.join(dir, 'ttsc'));
      return new StartupCache(path.join(dir, 'ttsc'), key);
    } catch (e) {
      debug(`not used: ${e instanceof Refused ? 'refused: ' : ''}${e && e.message}`);
      return undefined;
    }
  }

  constructor(dir, key) {
    this.dir = dir;
    this.key = key;
    this.sourceFile = `${key}.js`;
    this.codeFile = `${key}.v8`;
  }

  /** The cached patched source and its hash, or undefined if missing, unsafe or damaged. */
  readSource() {
    const file = path.join(this.dir, this.sourceFile);
    try {
      const buf = readOwnFile(file);
      if (!buf) return debug(`no ${file}`);
      const parts = splitHeader(buf, SOURCE_MAGIC);
      const hash = parts && sha256(parts.body);
      if (!parts || parts.fields !== hash) return debug(`ignored ${file}: its content does not match its hash`);
      debug(`read ${file}`);
      return { source: parts.body.toString('utf8'), hash };
    } catch (e) {
      return debug(`ignored ${file}: ${e && e.message}`);
    }
  }

  /** Stores the patched source; returns its hash (which the code cache is bound to). */
  writeSource(source) {
    const body = Buffer.from(source, 'utf8');
    const hash = sha256(body);
    try {
      writeAtomic(this.dir, this.sourceFile, `${SOURCE_MAGIC}${hash}\n`, body);
      debug(`wrote ${path.join(this.dir, this.sourceFile)}`);
    } catch (e) {
      debug(`cannot write ${this.sourceFile}: ${e && e.message}`);
    }
    return hash;
  }

  /** V8's code cache for the source with hash `sourceHash`, or undefined. */
  readCodeCache(sourceHash) {
    const file = path.join(this.dir, this.codeFile);
    try {
      const buf = readOwnFile(file);
      if (!buf) return debug(`no ${file}`);
      const parts = splitHeader(buf, CODE_MAGIC);
      if (!parts || parts.fields !== `source:${sourceHash} data:${sha256(parts.body)}`) {
        return debug(`ignored ${file}: not made from this source, or damaged`);
      }
      debug(`read ${file}`);
      return parts.body;
    } catch (e) {
      return debug(`ignored ${file}: ${e && e.message}`);
    }
  }

  writeCodeCache(sourceHash, data) {
    try {
      writeAtomic(this.dir, this.codeFile, `${CODE_MAGIC}source:${sourceHash} data:${sha256(data)}\n`, data);
      debug(`wrote ${path.join(this.dir, this.codeFile)}`);
    } catch (e) {
      debug(`cannot write ${this.codeFile}: ${e && e.message}`);
    }
  }

  /**
   * Entries for other TypeScript / ts-patch / Node versions are dead weight (13 MB each), and so are
   * temp files an interrupted run left (those of a concurrent run are recent).
   */
  prune() {
    try {
      for (const f of fs.readdirSync(this.dir)) {
        const file = path.join(this.dir, f);
        const stale = !f.startsWith(this.key) || (f.endsWith('.tmp') && Date.now() - fs.lstatSync(file).mtimeMs > 600_000);
        if (stale) fs.rmSync(file, { force: true });
      }
    } catch {
      /* best effort */
    }
  }
}

module.exports = { StartupCache, SOURCE_MAGIC, CODE_MAGIC };
