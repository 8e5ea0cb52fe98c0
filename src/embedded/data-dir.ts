/**
 * tenantry's data directory for the embedded server: `${dataDir}/pg` is the PostgreSQL cluster,
 * `${dataDir}/superuser-password` its superuser password (mode 0600, owned by the invoking user).
 * When tenantry is root the directory is 0755 so the `postgres` user can reach `pg/` (itself
 * 0700 and owned by that user), and every directory above it must be traversable by that user.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TenantryError } from '../errors.js';
import type { ServerUser } from './os-user.js';
import { findTraversalObstacle } from './reachability.js';

/** The files of one embedded cluster. */
export interface ClusterPaths {
  /** tenantry's data directory (absolute). */
  readonly dataDir: string;
  /** The PostgreSQL data directory, `${dataDir}/pg`. */
  readonly pgDir: string;
  /** The superuser password, `${dataDir}/superuser-password`. */
  readonly passwordFile: string;
}

/** The paths of the cluster kept in `dataDir`. */
export function clusterPaths(dataDir: string): ClusterPaths {
  const absolute = path.resolve(dataDir);
  return {
    dataDir: absolute,
    pgDir: path.join(absolute, 'pg'),
    passwordFile: path.join(absolute, 'superuser-password'),
  };
}

/**
 * Creates the data directory if needed and, when `user` runs the server, opens it to 0755 and
 * checks that `user` can traverse every directory down to it. Throws `EMBEDDED_START` naming
 * the exact directory that blocks the way, before anything is started.
 */
export async function prepareDataDir(paths: ClusterPaths, user: ServerUser | undefined): Promise<void> {
  if (user) await assertReachable(paths.dataDir, user); // existing parents, before creating anything
  try {
    await mkdir(paths.dataDir, { recursive: true, mode: user ? 0o755 : 0o700 });
    if (user) await chmod(paths.dataDir, 0o755);
  } catch (error) {
    throw new TenantryError(
      'EMBEDDED_START',
      { problem: `cannot create the data directory ${paths.dataDir}: ${(error as Error).message}` },
      { cause: error },
    );
  }
  if (user) await assertReachable(paths.dataDir, user); // including the directories just made
}

async function assertReachable(dir: string, user: ServerUser): Promise<void> {
  const obstacle = await findTraversalObstacle(dir, user);
  if (!obstacle) return;
  throw new TenantryError('EMBEDDED_START', {
    problem: `${obstacle.reason}, so PostgreSQL (which runs as ${user.name} because tenantry runs as root) cannot use the data directory ${dir}: choose another --data-dir or \`${obstacle.fix}\`.`,
  });
}

/** Whether the cluster was initialised (`pg/PG_VERSION` exists). */
export async function clusterExists(paths: ClusterPaths): Promise<boolean> {
  try {
    await stat(path.join(paths.pgDir, 'PG_VERSION'));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw unreadable(paths, error);
  }
}

/**
 * Throws `EMBEDDED_START` when `pg/postmaster.pid` names a live process: another server runs
 * on this data directory. A stale file (its process is gone) is left for PostgreSQL to handle.
 */
export async function assertNotRunning(paths: ClusterPaths): Promise<void> {
  const pidFile = path.join(paths.pgDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw unreadable(paths, error);
  }
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  throw new TenantryError('EMBEDDED_START', {
    problem: `another PostgreSQL server (pid ${pid}) is already running on the data directory ${paths.dataDir}; stop it (or the tenantry process that started it) first, or choose another --data-dir. If pid ${pid} is not PostgreSQL, delete ${pidFile}.`,
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, but another user's
  }
}

/** A fresh random superuser password, stored in `superuser-password` (mode 0600). */
export async function createPassword(paths: ClusterPaths): Promise<string> {
  const password = randomBytes(24).toString('base64url');
  await writeFile(paths.passwordFile, `${password}\n`, { mode: 0o600 });
  await chmod(paths.passwordFile, 0o600); // the mode above applies only to a new file
  return password;
}

/** The stored superuser password of an existing cluster; throws `EMBEDDED_START` when it is lost. */
export async function readPassword(paths: ClusterPaths): Promise<string> {
  let password: string;
  try {
    password = (await readFile(paths.passwordFile, 'utf8')).trim();
  } catch (error) {
    throw new TenantryError(
      'EMBEDDED_START',
      {
        problem: `the cluster in ${paths.pgDir} exists but its password file ${paths.passwordFile} cannot be read (${(error as Error).message}); restore the file, or move the data directory away to start afresh.`,
      },
      { cause: error },
    );
  }
  if (password === '') {
    throw new TenantryError('EMBEDDED_START', {
      problem: `the password file ${paths.passwordFile} is empty; restore it, or move the data directory away to start afresh.`,
    });
  }
  return password;
}

function unreadable(paths: ClusterPaths, error: unknown): TenantryError {
  return new TenantryError(
    'EMBEDDED_START',
    {
      problem: `cannot read ${paths.pgDir} (${(error as Error).message}); it may belong to another OS user (created while tenantry ran as root?). Run tenantry as that user, or choose another --data-dir.`,
    },
    { cause: error },
  );
}
