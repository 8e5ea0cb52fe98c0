/**
 * PostgreSQL refuses to run as root. When tenantry runs as root, initdb and postgres run as
 * the unprivileged OS user `postgres`, created here when it does not exist yet.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';

/** The OS account that initdb and postgres run as when tenantry itself runs as root. */
export interface ServerUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const execFileAsync = promisify(execFile);

/** The account name used for the server, as PostgreSQL's own packages do. */
export const serverUserName = 'postgres';

/** Commands that create a system account without a home, tried in order. */
const creators: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', serverUserName]],
  // Debian's adduser, then BusyBox's (Alpine).
  ['adduser', ['--system', '--group', '--no-create-home', '--shell', '/usr/sbin/nologin', serverUserName]],
  ['adduser', ['-S', '-D', '-H', '-s', '/sbin/nologin', serverUserName]],
];

/** Whether this process runs as root (never true on Windows). */
export function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The account to run PostgreSQL as: `undefined` when tenantry is not root (PostgreSQL then runs
 * as the current user), otherwise the `postgres` user, created on first use. Throws
 * `EMBEDDED_START` when no such user exists and none can be created.
 */
export async function resolveServerUser(logger?: Logger): Promise<ServerUser | undefined> {
  if (!runsAsRoot()) return undefined;
  const existing = await lookupUser(serverUserName);
  if (existing) return checked(existing);

  const failures: string[] = [];
  for (const [command, args] of creators) {
    try {
      await execFileAsync(command, args);
      logger?.info({ user: serverUserName, command }, 'created the OS user that runs embedded PostgreSQL');
    } catch (error) {
      failures.push(`${command}: ${firstLine(error)}`);
    }
    // Look again even after a failure: another process may have created it meanwhile.
    const created = await lookupUser(serverUserName);
    if (created) return checked(created);
  }
  throw new TenantryError('EMBEDDED_START', {
    problem:
      `tenantry runs as root, PostgreSQL refuses to run as root, and there is no OS user "${serverUserName}" to run it as; ` +
      `creating one failed (${failures.join('; ')}). Create an unprivileged user named ${serverUserName}, ` +
      'run tenantry as a non-root user, or pass --database-url to use an existing server.',
  });
}

function checked(user: ServerUser): ServerUser {
  if (user.uid === 0) {
    throw new TenantryError('EMBEDDED_START', {
      problem: `the OS user "${user.name}" has uid 0, and PostgreSQL refuses to run as root; give it an unprivileged uid.`,
    });
  }
  return user;
}

/** The uid and gid of `name`, from `id`, or from /etc/passwd when `id` is not installed. */
async function lookupUser(name: string): Promise<ServerUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]),
      execFileAsync('id', ['-g', name]),
    ]);
    return toUser(name, uid.stdout, gid.stdout);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return undefined; // `id` ran: no such user
  }
  try {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const fields = passwd
      .split('\n')
      .map((line) => line.split(':'))
      .find((entry) => entry[0] === name);
    return fields ? toUser(name, fields[2] ?? '', fields[3] ?? '') : undefined;
  } catch {
    return undefined;
  }
}

function toUser(name: string, uidText: string, gidText: string): ServerUser | undefined {
  const uid = Number.parseInt(uidText.trim(), 10);
  const gid = Number.parseInt(gidText.trim(), 10);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : undefined;
}

function firstLine(error: unknown): string {
  const failed = error as { stderr?: unknown; message?: unknown; code?: unknown };
  if (failed.code === 'ENOENT') return 'not installed';
  const text =
    typeof failed.stderr === 'string' && failed.stderr.trim() ? failed.stderr : String(failed.message);
  return text.trim().split('\n')[0] ?? 'failed';
}
