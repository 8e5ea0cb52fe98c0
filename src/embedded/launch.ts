/**
 * Launching the postmaster and waiting until it accepts connections: the "ready to accept
 * connections" line on stderr wakes the wait, and a real login with the superuser password
 * confirms it (falling back to polling when the line never shows). An early exit, a wrong
 * password or a 30 s timeout rejects with the server's last output.
 */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PostgresBinaries } from './binaries.js';
import { startProgram, closeOf } from './child-process.js';
import { superuser } from './cluster.js';
import type { ClusterPaths } from './data-dir.js';
import { PostgresServer, shutDown } from './embedded-server.js';
import type { ServerUser } from './os-user.js';
import { loopback, saysPortTaken } from './port.js';
import { ServerOutput } from './server-output.js';

/** Everything needed to launch the postmaster once. */
export interface LaunchSpec {
  readonly binaries: PostgresBinaries;
  readonly paths: ClusterPaths;
  readonly user: ServerUser | undefined;
  readonly port: number;
  readonly password: string;
  /** Extra settings, already as `-c name=value` argument pairs. */
  readonly settingArgs: readonly string[];
  readonly logger: Logger | undefined;
  readonly timeoutMs: number;
}

/** The postmaster could not bind its port (another process took it); retry with another. */
export class PortTakenError extends Error {
  /** The server's last output. */
  readonly output: string;

  constructor(port: number, output: string) {
    super(`port ${port} on ${loopback} was taken before PostgreSQL could bind it`);
    this.name = 'PortTakenError';
    this.output = output;
  }
}

/** Without the ready line, start logging in after this long anyway (localised messages). */
const pollWithoutReadyLineMs = 3_000;

/**
 * Starts the postmaster and resolves once it accepts connections. Rejects with
 * {@link PortTakenError} when the port was taken meanwhile, otherwise with `EMBEDDED_START`;
 * a server that started but failed is shut down before the promise rejects.
 */
export async function launchPostgres(spec: LaunchSpec): Promise<PostgresServer> {
  const output = new ServerOutput(spec.logger);
  const args = [
    '-D',
    spec.paths.pgDir,
    '-p',
    String(spec.port),
    '-c',
    `listen_addresses=${loopback}`,
    '-c',
    'unix_socket_directories=',
    '-c',
    'max_connections=200',
    ...spec.settingArgs,
  ];
  let ready = false;
  const stopWatching = output.onLine((line) => {
    if (line.includes('database system is ready to accept connections')) ready = true;
  });
  const child = await startProgram({
    file: spec.binaries.postgres,
    args,
    cwd: spec.paths.dataDir,
    user: spec.user,
    output,
    packageName: spec.binaries.packageName,
  });
  const closed = closeOf(child);
  try {
    await waitUntilReady(spec, child, output, closed, () => ready);
  } catch (error) {
    await shutDown(child);
    throw error;
  } finally {
    stopWatching();
  }
  spec.logger?.info({ port: spec.port, dataDir: spec.paths.dataDir }, 'embedded PostgreSQL started');
  return new PostgresServer({
    child,
    port: spec.port,
    dataDir: spec.paths.dataDir,
    superuser,
    password: spec.password,
    logger: spec.logger,
  });
}

async function waitUntilReady(
  spec: LaunchSpec,
  child: ChildProcess,
  output: ServerOutput,
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
  sawReadyLine: () => boolean,
): Promise<void> {
  const started = Date.now();
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void closed.then((result) => (exit = result));
  const exitedEarly = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      // Let the output streams drain (briefly: a stray child may hold the pipe open).
      await Promise.race([closed, sleep(1_000)]);
      const tail = output.tail();
      if (saysPortTaken(tail)) throw new PortTakenError(spec.port, tail);
      const how = exit?.signal ?? child.signalCode ?? `exit code ${String(exit?.code ?? child.exitCode)}`;
      throw startError(`PostgreSQL exited (${how}) before accepting connections; its output:\n${tail}`);
    }
    const elapsed = Date.now() - started;
    if (sawReadyLine() || elapsed >= pollWithoutReadyLineMs) {
      const login = await tryLogin(spec.port, spec.password);
      if (login === 'ok') return;
      if (login instanceof Error) {
        throw new TenantryError(
          'EMBEDDED_START',
          {
            problem: `PostgreSQL started but refused the superuser password stored in ${spec.paths.passwordFile} (${login.message}); restore the right password file, or move ${spec.paths.dataDir} away to start afresh.`,
          },
          { cause: login },
        );
      }
    }
    if (elapsed >= spec.timeoutMs) {
      throw startError(
        `PostgreSQL did not accept connections on ${loopback}:${spec.port} within ${Math.round(spec.timeoutMs / 1000)} s; its last output:\n${output.tail()}`,
      );
    }
    await Promise.race([sleep(sawReadyLine() ? 50 : 100), exitedEarly]);
  }
}

/** `'ok'` when the superuser can log in, the error when the password is refused, else `'retry'`. */
async function tryLogin(port: number, password: string): Promise<'ok' | 'retry' | Error> {
  const client = new pg.Client({
    host: loopback,
    port,
    user: superuser,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 2_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return 'ok';
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    // 28P01 invalid_password, 28000 invalid_authorization_specification.
    if ((code === '28P01' || code === '28000') && error instanceof Error) return error;
    return 'retry'; // refused (not listening yet) or 57P03 (still starting up)
  } finally {
    await client.end().catch(() => undefined);
  }
}

function startError(problem: string): TenantryError {
  return new TenantryError('EMBEDDED_START', { problem });
}
