export { HeldTransaction } from './held-transaction.js';
export type { TenantDbSource, TransactionModes } from './held-transaction.js';
export { TenantryDialect, TenantryDriver } from './kysely.js';
export type { TenantryDialectConfig } from './kysely.js';
export { TenantryConnection } from './kysely-connection.js';
export { tenantryPgPool } from './pg-pool.js';
export { TenantryPoolClient } from './pg-pool-client.js';
