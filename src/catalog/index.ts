export { CatalogCache, CATALOG_CHANNEL } from './cache.js';
export type { CatalogCacheOptions } from './cache.js';
export { installCatalog, readInstalledCatalog } from './install.js';
export { expandIncludes } from './migrations.js';
export type { InstallResult } from './install.js';
export { rolesFor } from './roles.js';
export type { CatalogRoles } from './roles.js';
export { CredentialStore, NO_SUCH_CREDENTIAL } from './credentials.js';
export { inTransaction } from './transaction.js';
export { MOVE_LOCK } from './locks.js';
export { TENANT_COLUMNS, toTenant } from './rows.js';
export type { TenantRow } from './rows.js';
export { tenantFaceSchema, tenantObjectName, tenantSearchPath } from './roles.js';
export type {
  Tenant,
  TenantIsolation,
  TenantKind,
  TenantRef,
  TenantState,
  RegisteredTable,
} from './types.js';
