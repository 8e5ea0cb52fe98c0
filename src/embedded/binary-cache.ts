/**
 * A copy of the PostgreSQL binaries that the server user can reach. node_modules may sit under
 * a directory the `postgres` user cannot traverse (a 0700 home or `mktemp -d` dir in CI), and
 * npm may have skipped the install script that creates the library symlinks; in either case
 * tenantry copies `native/` once to `<tmpdir>/tenantry-postgres-<version>-<uid>` and runs that.
 */
import { randomBytes } from 'node:crypto';
import { chmod, cp, lstat, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { binariesIn, missingLibraryLinks, type PostgresBinaries } from './binaries.js';
import type { ServerUser } from './os-user.js';
import { findAccessObstacle, findTraversalObstacle, type Obstacle } from './reachability.js';

/** Written last into a finished copy; holds the package version. */
const completeMarker = '.tenantry-complete';

/**
 * The binaries to run: the packaged ones when `user` (the server user, if tenantry is root)
 * can run them and nothing is missing, otherwise a reachable, complete copy (made once, reused
 * after). Throws `EMBEDDED_START` when no reachable place for a copy exists.
 */
export async function reachableBinaries(
  packaged: PostgresBinaries,
  user: ServerUser | undefined,
  logger?: Logger,
): Promise<PostgresBinaries> {
  const missing = await missingLibraryLinks(packaged.nativeDir);
  const obstacle = user ? await binariesObstacle(packaged, user) : undefined;
  if (!obstacle && missing.length === 0) return packaged;

  const why = obstacle
    ? `${obstacle.reason} (${packaged.initdb})`
    : `${missing.length} library symlinks are missing in ${packaged.nativeDir} (npm skipped the package's install script)`;
  const owner = process.getuid?.();
  const bases = os.platform() === 'win32' ? [os.tmpdir()] : [...new Set([os.tmpdir(), '/tmp'])];
  const rejected: string[] = [];
  for (const base of bases) {
    const baseObstacle = user ? await findTraversalObstacle(base, user) : undefined;
    if (baseObstacle) {
      rejected.push(baseObstacle.reason);
      continue;
    }
    const dir = path.join(base, `tenantry-postgres-${packaged.version}-${owner ?? 'user'}`);
    const copy = binariesIn(dir, packaged.packageName, packaged.version);
    if ((await inspect(dir, packaged.version, owner)) !== 'complete') {
      logger?.info({ from: packaged.nativeDir, to: dir, why }, 'copying the PostgreSQL binaries');
      await makeCopy(packaged.nativeDir, dir, packaged.version, owner);
    }
    const copyObstacle = user ? await binariesObstacle(copy, user) : undefined;
    if (copyObstacle) {
      rejected.push(copyObstacle.reason);
      continue;
    }
    return copy;
  }
  throw new TenantryError('EMBEDDED_START', {
    problem: `${why}, and no reachable directory for a copy was found (${rejected.join('; ')}). Install tenantry under a directory the ${user?.name ?? 'current'} user can traverse.`,
  });
}

async function binariesObstacle(binaries: PostgresBinaries, user: ServerUser): Promise<Obstacle | undefined> {
  const { nativeDir } = binaries;
  return findAccessObstacle(nativeDir, user, {
    directories: ['bin', 'lib', 'share'].map((dir) => path.join(nativeDir, dir)),
    executables: [binaries.initdb, binaries.postgres],
  });
}

/** Whether a cache directory is absent, complete or half-made; refuses one someone else could have written. */
async function inspect(
  dir: string,
  version: string,
  owner: number | undefined,
): Promise<'absent' | 'complete' | 'incomplete'> {
  try {
    const info = await lstat(dir);
    if (!info.isDirectory() || (owner !== undefined && info.uid !== owner) || (info.mode & 0o022) !== 0) {
      throw new TenantryError('EMBEDDED_START', {
        problem: `${dir} exists but is not a directory owned by this user and writable only by it; remove it (tenantry keeps its copy of the PostgreSQL binaries there).`,
      });
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  const marker = await readFile(path.join(dir, completeMarker), 'utf8').catch(() => undefined);
  return marker === version ? 'complete' : 'incomplete';
}

/** Copies `native/` to a temporary name, completes it, then renames it into place atomically. */
async function makeCopy(
  source: string,
  dir: string,
  version: string,
  owner: number | undefined,
): Promise<void> {
  if ((await inspect(dir, version, owner)) === 'incomplete') await rm(dir, { recursive: true, force: true });
  const temp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await cp(source, temp, { recursive: true, verbatimSymlinks: true });
    await openUp(temp);
    for (const link of await missingLibraryLinks(temp)) {
      const target = path.join(temp, link.target);
      await symlink(path.relative(path.dirname(target), path.join(temp, link.source)), target);
    }
    await writeFile(path.join(temp, completeMarker), version, { mode: 0o644 });
    await rename(temp, dir);
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    // Another process finished the same copy first: use theirs.
    if ((code === 'EEXIST' || code === 'ENOTEMPTY') && (await inspect(dir, version, owner)) === 'complete')
      return;
    throw new TenantryError(
      'EMBEDDED_START',
      {
        problem: `cannot copy the PostgreSQL binaries from ${source} to ${dir}: ${(error as Error).message}`,
      },
      { cause: error },
    );
  }
}

/** Directories 0755, executables 0755, other files 0644: readable by the server user. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      await openUp(child);
    } else if (entry.isFile()) {
      const { mode } = await lstat(child);
      await chmod(child, (mode & 0o111) !== 0 ? 0o755 : 0o644);
    }
  }
}
