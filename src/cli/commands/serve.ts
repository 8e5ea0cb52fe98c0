import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { resolveCliSettings } from '../../config.js';
import { describeUrl } from '../../connection-url.js';
import { seedDemo } from '../../demo/index.js';
import { startEmbedded, type EmbeddedServer } from '../../embedded/index.js';
import { createLogger } from '../../logger.js';
import { createTenantry, type Tenantry } from '../../tenantry.js';
import type { GlobalFlags } from '../connect.js';
import { resolveMasterKey } from '../master-key.js';
import { out } from '../output.js';
import { removeRuntimeInfo, writeRuntimeInfo } from '../runtime-file.js';

interface ServeFlags {
  demo?: boolean;
  pgPortInternal?: string;
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
    .action(async (flags: ServeFlags & { embeddedPort: string }) => {
      const settings = resolveCliSettings(globals());
      const logger = createLogger(settings.logLevel ?? 'info');
      const dataDir = resolve(settings.dataDir);
      let embedded: EmbeddedServer | undefined;
      let tenantry: Tenantry | undefined;
      const stopping = untilSignal();
      try {
        let url = settings.databaseUrl;
        mkdirSync(dataDir, { recursive: true });
        if (!url) {
          embedded = await startEmbedded({ dataDir, port: Number(flags.embeddedPort), logger });
          url = embedded.url;
        }
        const masterKey = resolveMasterKey(settings, true);
        tenantry = await createTenantry({
          databaseUrl: url,
          logger,
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
            'demo users (demo mode only; password "demo"): alice@HomeDepot, fred@Lowes, nina@LowesNY (read-only), bob@LowesBos, root@ops',
          );
        }
        out(`tenantry ready: ${where}. Try: npx tenantry sql --tenant HomeDepot "select name from customer"`);
        out('Press Ctrl-C to stop.');
        const signal = await stopping;
        logger.info({ signal }, 'stopping');
      } finally {
        removeRuntimeInfo(dataDir, process.pid);
        await tenantry?.close().catch(() => undefined);
        await embedded?.stop();
      }
    });
}
