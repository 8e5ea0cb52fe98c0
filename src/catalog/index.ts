export { CatalogCache, CATALOG_CHANNEL } from './cache.js';
export type { CatalogCacheOptions } from './cache.js';
export { installCatalog, readInstalledCatalog } from './install.js';
export type { InstallResult } from './install.js';
export { rolesFor } from './roles.js';
export type { CatalogRoles } from './roles.js';
export { TenantStore } from './tenants.js';
export type { CreateTenantInput } from './tenants.js';
export { TableRegistry } from './tables.js';
export type {
  Tenant,
  TenantIsolation,
  TenantKind,
  TenantRef,
  TenantState,
  RegisteredTable,
} from './types.js';
