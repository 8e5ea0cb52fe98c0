export { PooledTenantDb, releaseClean, tenantSetting } from './tenant-db.js';
export type { QueryInput, TenantDb, TenantGate } from './tenant-db.js';
export { TenantQuery, runWithPrelude } from './tenant-query.js';
