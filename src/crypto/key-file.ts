import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { TenantryError } from '../errors.js';
import { KeyRing, generateMasterKey } from './key-ring.js';

/** What {@link loadOrCreateKeyFile} found or made. */
export interface KeyFile {
  /** The key ring read from (or just written to) the file. */
  readonly ring: KeyRing;
  /**
   * True when this call generated the key: the caller should warn that production should pass
   * TENANTRY_MASTER_KEY from a secret store instead.
   */
  readonly created: boolean;
}

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

function invalid(path: string, problem: string, cause?: unknown): TenantryError {
  return new TenantryError(
    'MASTER_KEY_INVALID',
    { source: `key file ${path}`, problem },
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Reads a key file, refusing one that group or others may access (on POSIX systems). Returns
 * `undefined` when the file does not exist.
 */
function readKeyFile(path: string): KeyRing | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw invalid(path, `the file cannot be opened (${errorCode(error) ?? 'unknown error'})`, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw invalid(path, 'it is not a regular file');
    const mode = stat.mode & 0o777;
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      const octal = mode.toString(8).padStart(4, '0');
      throw invalid(
        path,
        `the file has mode ${octal} but must be 0600 or stricter (only its owner may read it); run chmod 600 ${path}`,
      );
    }
    return KeyRing.fromEnv(readFileSync(fd, 'utf8'), `key file ${path}`);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to a new file created exclusively (`wx`) with mode 0600 and flushed to disk. */
function writeExclusive(path: string, data: string): void {
  const fd = openSync(path, 'wx', FILE_MODE);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Publishes `data` at `path` only if nothing is there yet. The key is written to a private temp
 * file first and hard-linked into place, so a concurrent reader never sees a half-written key
 * and a crash never leaves an empty one. Where hard links are unsupported it falls back to
 * creating `path` itself with `wx`. Returns false when another process created `path` first.
 */
function publishExclusive(path: string, data: string): boolean {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeExclusive(temp, data);
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  try {
    writeExclusive(path, data);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Loads the master key ring from the key file at `path`, or on first start generates 32 random
 * bytes and writes them base64-encoded with mode 0600 (creating the folder with mode 0700).
 * Use it in the CLI when no TENANTRY_MASTER_KEY was given; when `created` is true, warn that
 * production should pass TENANTRY_MASTER_KEY from a secret store. Two processes starting at
 * once end up with the same key. The file may also hold a `NEW,OLD` list, like the variable.
 *
 * Throws `TENANTRY_ERR_MASTER_KEY_INVALID` naming the file when it cannot be read or written,
 * does not hold a valid key, or (outside Windows) has a mode looser than 0600.
 */
export function loadOrCreateKeyFile(path: string): KeyFile {
  const existing = readKeyFile(path);
  if (existing) return { ring: existing, created: false };
  const encoded = generateMasterKey();
  let created: boolean;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: DIR_MODE });
    created = publishExclusive(path, `${encoded}\n`);
  } catch (error) {
    throw invalid(path, `the file cannot be created (${errorCode(error) ?? 'unknown error'})`, error);
  }
  if (created) return { ring: KeyRing.fromEnv(encoded, `key file ${path}`), created: true };
  const raced = readKeyFile(path);
  if (!raced) throw invalid(path, 'the file disappeared while it was being created');
  return { ring: raced, created: false };
}

/**
 * Replaces the key file's content atomically (temp file with mode 0600, then rename), e.g.
 * `NEW,OLD` during `tenantry rotate-key` and `NEW` after it.
 */
export function replaceKeyFile(path: string, value: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', FILE_MODE);
  try {
    writeSync(fd, `${value}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}
