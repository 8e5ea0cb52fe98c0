/**
 * PgBouncer for the gateway benchmark: Debian's package (installed when missing), its own ini and
 * userlist in a temporary directory, transaction pooling, on a free port (Debian's default
 * config claims 6432, which is left alone). PgBouncer refuses to run as root: as root it runs
 * as the OS user `postgres` (the embedded PostgreSQL's user) via `-u`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinary, freePort, osUser, runProgram, waitForPort } from './gateway-tools.js';

/** Where PgBouncer forwards to and whom it lets in (one database, one user). */
export interface PgbouncerOptions {
  readonly serverHost: string;
  readonly serverPort: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly poolSize: number;
}

/** A running PgBouncer. */
export interface Pgbouncer {
  readonly port: number;
  readonly pid: number | undefined;
  readonly version: string;
  stop(): Promise<void>;
}

/** `"user" "password"` as PgBouncer's auth_file wants it (double quotes doubled). */
function quoted(value: string): string {
  return `"${value.replace(/"/g, '""')}"`;
}

/** Starts PgBouncer in transaction mode in front of `options.database`. */
export async function startPgbouncer(options: PgbouncerOptions): Promise<Pgbouncer> {
  const binary = await ensureBinary('pgbouncer', 'pgbouncer');
  const { stdout } = await runProgram(binary, ['--version'], { allowFail: true });
  const version = stdout.split('\n')[0]?.trim() || 'PgBouncer';
  const dir = mkdtempSync(join(tmpdir(), 'tenantry-bench-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  const userlist = join(dir, 'userlist.txt');
  writeFileSync(
    ini,
    [
      '[databases]',
      `${options.database} = host=${options.serverHost} port=${options.serverPort} dbname=${options.database}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${userlist}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      'max_client_conn = 200',
      'log_connections = 0',
      'log_disconnections = 0',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  writeFileSync(userlist, `${quoted(options.user)} ${quoted(options.password)}\n`, { mode: 0o600 });
  const args = [ini];
  if (process.getuid?.() === 0) {
    const user = osUser('postgres');
    if (!user) throw new Error('PgBouncer refuses to run as root and there is no OS user "postgres"');
    for (const file of [dir, ini, userlist]) chownSync(file, user.uid, user.gid);
    args.unshift('-u', 'postgres');
  }
  let output = '';
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    await Promise.race([
      waitForPort('127.0.0.1', port, 10_000),
      exited.then(() => {
        throw new Error(`pgbouncer exited at start:\n${output.trim()}`);
      }),
    ]);
  } catch (error) {
    child.kill('SIGKILL');
    cleanup();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return {
    port,
    pid: child.pid,
    version,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM'); // immediate shutdown
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        cleanup();
      })();
      return stopping;
    },
  };
}
