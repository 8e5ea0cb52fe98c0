/**
 * The PostgreSQL cluster in `${dataDir}/pg`: created once with initdb (SCRAM authentication,
 * UTF8, C locale, a random superuser password), reused afterwards with the stored password.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import type { PostgresBinaries } from './binaries.js';
import { runProgram } from './child-process.js';
import { clusterExists, createPassword, readPassword, type ClusterPaths } from './data-dir.js';
import type { ServerUser } from './os-user.js';
import { ServerOutput } from './server-output.js';

/** The superuser of the embedded cluster. */
export const superuser = 'postgres';

/** A cluster ready to start: its superuser password and whether it was just created. */
export interface Cluster {
  readonly password: string;
  readonly created: boolean;
}

/**
 * Returns the cluster in `paths.pgDir`, running initdb first when there is none. When `user`
 * runs the server, `pg/` is owned by that user (re-owned if an earlier run left another owner).
 * Throws `EMBEDDED_START` with initdb's output when initdb fails.
 */
export async function ensureCluster(
  paths: ClusterPaths,
  binaries: PostgresBinaries,
  user: ServerUser | undefined,
  logger?: Logger,
): Promise<Cluster> {
  if (await clusterExists(paths)) {
    const password = await readPassword(paths);
    if (user) await ensureOwner(paths.pgDir, user, logger);
    return { password, created: false };
  }

  const password = await createPassword(paths);
  await mkdir(paths.pgDir, { recursive: true, mode: 0o700 });
  await chmod(paths.pgDir, 0o700);
  if (user) await chown(paths.pgDir, user.uid, user.gid);

  // initdb reads the password from a file; it runs as `user`, so the file belongs to `user`.
  const pwfile = path.join(paths.dataDir, `.initdb-pwfile-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600, flag: 'wx' });
  try {
    if (user) await chown(pwfile, user.uid, user.gid);
    await runProgram(
      {
        file: binaries.initdb,
        args: [
          '-D',
          paths.pgDir,
          '--auth=scram-sha-256',
          `--username=${superuser}`,
          `--pwfile=${pwfile}`,
          '--encoding=UTF8',
          '--locale=C',
          '--no-instructions',
        ],
        cwd: paths.dataDir,
        user,
        output: new ServerOutput(logger),
        packageName: binaries.packageName,
      },
      `initdb into ${paths.pgDir}`,
    );
  } finally {
    await rm(pwfile, { force: true });
  }
  logger?.info({ pgDir: paths.pgDir }, 'created the embedded PostgreSQL cluster');
  return { password, created: true };
}

/** Gives `dir` and everything in it to `user` when `dir` belongs to someone else. */
async function ensureOwner(dir: string, user: ServerUser, logger?: Logger): Promise<void> {
  const info = await stat(dir);
  if (info.uid === user.uid && info.gid === user.gid) return;
  logger?.info({ pgDir: dir, user: user.name }, 'giving the embedded PostgreSQL cluster to its OS user');
  await chownTree(dir, user);
}

async function chownTree(target: string, user: ServerUser): Promise<void> {
  const info = await lstat(target);
  if (info.isSymbolicLink()) return; // never follow links out of the cluster
  await chown(target, user.uid, user.gid);
  if (!info.isDirectory()) return;
  for (const name of await readdir(target)) await chownTree(path.join(target, name), user);
}
