/**
 * The HTTP API in a process of its own for the `http` benchmark, so the load generator does not
 * share its event loop. Reads TENANTRY_BENCH_URL, TENANTRY_MASTER_KEY and TENANTRY_ADMIN_TOKEN,
 * prints `{"port":N}` once listening, and stops on SIGTERM.
 */
import { createLogger, createTenantry, startHttp } from '../src/index.js';

const sharedPoolMax = Number(process.env.TENANTRY_BENCH_SHARED_POOL_MAX ?? '') || undefined;

const tenantry = await createTenantry({
  databaseUrl: process.env.TENANTRY_BENCH_URL ?? '',
  masterKey: process.env.TENANTRY_MASTER_KEY ?? '',
  install: false,
  // As `tenantry serve` runs on its embedded PostgreSQL (the bench's own server unless
  // TENANTRY_BENCH_DATABASE_URL names another): TENANTRY_BENCH_SHARED_POOL_MAX, '' for no cap.
  ...(sharedPoolMax ? { pool: { sharedPoolMax } } : {}),
});
const http = await startHttp(tenantry, {
  port: 0,
  logger: createLogger('fatal'),
  adminToken: process.env.TENANTRY_ADMIN_TOKEN ?? '',
});
console.log(JSON.stringify({ port: http.port }));
process.on('SIGTERM', () => {
  void http
    .close()
    .then(() => tenantry.close())
    .then(() => process.exit(0));
});
