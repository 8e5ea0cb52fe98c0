/**
 * The soak benchmark's tenantry server, a process of its own (so that its memory is measured
 * alone): one instance with the PostgreSQL gateway and the HTTP API, as `tenantry serve` runs
 * them. Environment: TENANTRY_SOAK_URL, TENANTRY_MASTER_KEY, TENANTRY_ADMIN_TOKEN,
 * TENANTRY_SOAK_BUDGET, TENANTRY_SOAK_IDLE_MS. Ops: `memory` (`{ gc: true }` after a full
 * collection), `stats`, `stop`.
 */
import { createLogger, createTenantry, startHttp } from '../src/index.js';
import { serveChild } from './soak-child.js';
import { memorySample } from './soak-common.js';

serveChild(async () => {
  const tenantry = await createTenantry({
    databaseUrl: process.env.TENANTRY_SOAK_URL ?? '',
    masterKey: process.env.TENANTRY_MASTER_KEY ?? '',
    install: false,
    pool: {
      budget: Number(process.env.TENANTRY_SOAK_BUDGET ?? '40'),
      idleTimeoutMs: Number(process.env.TENANTRY_SOAK_IDLE_MS ?? '30000'),
    },
  });
  const gateway = await tenantry.startGateway({ port: 0 });
  const http = await startHttp(tenantry, {
    port: 0,
    logger: createLogger('fatal'),
    adminToken: process.env.TENANTRY_ADMIN_TOKEN ?? '',
    gateway: () => gateway,
  });
  return {
    info: { gatewayPort: gateway.port, httpPort: http.port },
    handlers: {
      memory: (arg) => Promise.resolve(memorySample((arg as { gc?: boolean } | undefined)?.gc === true)),
      stats: () => {
        const pools = tenantry.poolStats();
        const g = gateway.stats();
        return Promise.resolve({
          gatewayClients: g.clients,
          gatewayActive: g.active,
          pools: pools.pools,
          waiters: pools.waiters,
          servers: pools.servers,
        });
      },
      stop: async () => {
        await gateway.close(2_000);
        await http.close();
        await tenantry.close();
        return null;
      },
    },
  };
});
