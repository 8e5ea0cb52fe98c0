export { PooledTenantDb } from './tenant-db.js';
export type { Acquire, QueryInput, TenantDb, TenantGate, TenantRoute } from './tenant-db.js';
export { TenantQuery, runWithPrelude } from './tenant-query.js';
export type { PreludeStatement } from './tenant-query.js';
export { normalizeSql, refusedStatement } from './sql-guard.js';
