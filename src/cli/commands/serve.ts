import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { resolveCliSettings } from '../../config.js';
import { describeUrl } from '../../connection-url.js';
import { seedDemo } from '../../demo/index.js';
import { colocatedPoolMax, startEmbedded, type EmbeddedServer } from '../../embedded/index.js';
import { createLogger } from '../../logger.js';
import { createTenantry, type Tenantry } from '../../tenantry.js';
import { TenantryError, isTenantryError } from '../../errors.js';
import type { Gateway, GatewayOptions } from '../../gateway/index.js';
import { startHttp, type HttpServer } from '../../http/index.js';
import type { Logger } from '../../logger.js';
import type { GlobalFlags } from '../connect.js';
import { resolveMasterKey } from '../master-key.js';
import { out } from '../output.js';
import { removeRuntimeInfo, writeRuntimeInfo } from '../runtime-file.js';
import { startServeWorkers } from './jobs.js';

interface ServeFlags {
  demo?: boolean;
  embeddedPort: string;
  pgPort?: string;
  pgHost: string;
  poolMode: string;
  tlsCert?: string;
  tlsKey?: string;
  gateway: boolean;
  httpPort?: string;
  httpHost: string;
  http: boolean;
  workers?: string;
  jobsModule?: string;
  sharedPoolMax?: string;
}

/**
 * The application role's pool when PostgreSQL is the embedded one on this machine: 4 per CPU, plus
 * one per job worker here (a transactional job holds its connection while it runs).
 */
function colocatedServePoolMax(flags: ServeFlags): number {
  const running = flags.workers !== undefined || flags.jobsModule !== undefined;
  const workers = running ? Number(flags.workers ?? '4') : 0;
  return colocatedPoolMax() + (Number.isSafeInteger(workers) && workers > 0 ? workers : 0);
}

/** `--shared-pool-max`, checked (undefined when not given). */
function sharedPoolMaxFlag(flags: ServeFlags): number | undefined {
  if (flags.sharedPoolMax === undefined) return undefined;
  const value = Number(flags.sharedPoolMax);
  if (!Number.isInteger(value) || value < 1 || value > 100_000) {
    throw new TenantryError('CONFIG', {
      problem: `--shared-pool-max must be a whole number from 1 to 100000, not ${flags.sharedPoolMax}`,
    });
  }
  return value;
}

/** Starts the HTTP API on the asked port; on the default port, falls back to a free one when taken. */
async function startHttpServer(
  tenantry: Tenantry,
  flags: ServeFlags,
  adminToken: string | undefined,
  logger: Logger,
  gateway: () => Gateway | undefined,
): Promise<HttpServer> {
  const port = flags.httpPort === undefined ? 8080 : Number(flags.httpPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TenantryError('CONFIG', {
      problem: `--http-port must be a port number, not ${flags.httpPort}`,
    });
  }
  const options = {
    host: flags.httpHost,
    logger,
    gateway,
    ...(adminToken === undefined ? {} : { adminToken }),
  };
  try {
    return await startHttp(tenantry, { ...options, port });
  } catch (error) {
    if (flags.httpPort !== undefined || !isTenantryError(error, 'PORT_IN_USE')) throw error;
    return startHttp(tenantry, { ...options, port: 0 });
  }
}

/** Starts the gateway on the asked port; on the default port, falls back to a free one when taken. */
async function startGateway(tenantry: Tenantry, flags: ServeFlags): Promise<Gateway> {
  if (flags.poolMode !== 'transaction' && flags.poolMode !== 'session') {
    throw new TenantryError('CONFIG', {
      problem: `--pool-mode must be transaction or session, not ${flags.poolMode}`,
    });
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new TenantryError('CONFIG', { problem: '--tls-cert and --tls-key go together' });
  }
  const options: GatewayOptions = {
    host: flags.pgHost,
    poolMode: flags.poolMode,
    ...(flags.tlsCert && flags.tlsKey
      ? { tls: { cert: readFileSync(flags.tlsCert), key: readFileSync(flags.tlsKey) } }
      : {}),
  };
  const port = flags.pgPort === undefined ? 6432 : Number(flags.pgPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TenantryError('CONFIG', { problem: `--pg-port must be a port number, not ${flags.pgPort}` });
  }
  try {
    return await tenantry.startGateway({ ...options, port });
  } catch (error) {
    if (flags.pgPort !== undefined || !isTenantryError(error, 'PORT_IN_USE')) throw error;
    return tenantry.startGateway({ ...options, port: 0 });
  }
}

/** Resolves when the process receives SIGINT or SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolveSignal(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** `tenantry serve`: embedded PostgreSQL (unless --database-url), catalog, demo data; runs until Ctrl-C. */
export function serveCommand(globals: () => GlobalFlags): Command {
  return new Command('serve')
    .description('start tenantry (embedded PostgreSQL unless --database-url) and run until Ctrl-C')
    .option('--demo', 'install the demo tenants, tables and rows (seed 004)')
    .option(
      '--embedded-port <port>',
      'preferred port of the embedded PostgreSQL (a free one is picked when taken)',
      '5432',
    )
    .option('--pg-port <port>', 'port of the PostgreSQL wire-protocol gateway (default 6432)')
    .option('--pg-host <host>', 'address the gateway listens on', '127.0.0.1')
    .option('--pool-mode <mode>', 'gateway pooling: transaction or session', 'transaction')
    .option('--tls-cert <file>', 'PEM certificate: the gateway answers SSLRequest with TLS')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--no-gateway', 'do not start the gateway')
    .option('--http-port <port>', 'port of the HTTP API and console (default 8080)')
    .option('--http-host <host>', 'address the HTTP API listens on', '127.0.0.1')
    .option('--no-http', 'do not start the HTTP API')
    .option('--workers <n>', 'run job workers here, N jobs at a time (handlers from --jobs-module)')
    .option('--jobs-module <file>', 'ES module whose default export (tenantry) => … defines job handlers')
    .option(
      '--shared-pool-max <n>',
      "connections of the application role's pool (default with the embedded PostgreSQL: 4 per CPU plus --workers)",
    )
    .action(async (flags: ServeFlags) => {
      const settings = resolveCliSettings(globals());
      const logger = createLogger(settings.logLevel ?? 'info');
      const dataDir = resolve(settings.dataDir);
      let embedded: EmbeddedServer | undefined;
      let tenantry: Tenantry | undefined;
      let gateway: Gateway | undefined;
      let http: HttpServer | undefined;
      const poolMaxFlag = sharedPoolMaxFlag(flags);
      const stopping = untilSignal();
      try {
        let url = settings.databaseUrl;
        // Private to its user; as root, the embedded server's own user must be able to reach it.
        mkdirSync(dataDir, { recursive: true, mode: process.getuid?.() === 0 ? 0o755 : 0o700 });
        if (!url) {
          embedded = await startEmbedded({ dataDir, port: Number(flags.embeddedPort), logger });
          url = embedded.url;
        }
        const masterKey = resolveMasterKey(settings, true);
        const poolMax = poolMaxFlag ?? (embedded ? colocatedServePoolMax(flags) : undefined);
        tenantry = await createTenantry({
          databaseUrl: url,
          logger,
          ...(poolMax === undefined ? {} : { pool: { sharedPoolMax: poolMax } }),
          ...(masterKey === undefined ? {} : { masterKey }),
        });
        writeRuntimeInfo(dataDir, { url, pid: process.pid, embedded: embedded !== undefined });
        const where = embedded
          ? `embedded PostgreSQL at 127.0.0.1:${embedded.port} (data dir ${dataDir})`
          : `PostgreSQL at ${describeUrl(url)}`;
        if (flags.demo) {
          const demo = await seedDemo(tenantry);
          out(
            demo.created
              ? `demo data installed: tenants ${demo.tenants.join(', ')}`
              : `demo data already present: tenants ${demo.tenants.join(', ')}`,
          );
          out(
            'demo users (demo mode only; password "demo"): alice@HomeDepot, admin@HomeDepot (tenant admin), fred@Lowes, nina@LowesNY (read-only), bob@LowesBos, root@ops',
          );
        }
        if (flags.gateway) {
          gateway = await startGateway(tenantry, flags);
          out(
            `gateway listening on ${gateway.host}:${gateway.port} (${flags.poolMode} pooling): psql "postgresql://alice%40HomeDepot@${gateway.host}:${gateway.port}/tenantry"`,
          );
        }
        if (flags.http) {
          http = await startHttpServer(tenantry, flags, settings.adminToken, logger, () => gateway);
          out(
            `HTTP API and console at ${http.url}/ (OpenAPI at ${http.url}/docs, metrics at ${http.url}/metrics)`,
          );
          if (http.generatedAdminToken) {
            out(
              `admin token (shown once; stored hashed — set TENANTRY_ADMIN_TOKEN to choose your own): ${http.generatedAdminToken}`,
            );
          }
        }
        if (flags.workers !== undefined || flags.jobsModule !== undefined) {
          out(await startServeWorkers(tenantry, flags.workers ?? '4', flags.jobsModule));
        }
        out(`tenantry ready: ${where}. Try: npx tenantry sql --tenant HomeDepot "select name from customer"`);
        out('Press Ctrl-C to stop.');
        const signal = await stopping;
        logger.info({ signal }, 'stopping');
      } finally {
        removeRuntimeInfo(dataDir, process.pid);
        await http?.close().catch(() => undefined);
        await gateway?.close(10_000).catch(() => undefined);
        await tenantry?.close().catch(() => undefined);
        await embedded?.stop();
      }
    });
}
