// The public API of tenantry, listed by name.
export { createTenantry } from './tenantry.js';
export type { OperatorDb, Tenantry, WithTenantOptions } from './tenantry.js';
export type { TenantryConfig, ResolvedConfig } from './config.js';
export { getTenant, tryGetTenant } from './context/index.js';
export type { TenantDb, QueryInput } from './session/index.js';
export type {
  Tenant,
  TenantIsolation,
  TenantKind,
  TenantRef,
  TenantState,
  RegisteredTable,
  CreateTenantInput,
  TenantStore,
  TableRegistry,
  CatalogCache,
  CatalogRoles,
} from './catalog/index.js';
export { TenantryError, isTenantryError, errorCodes } from './errors.js';
export type { ErrorCode, ErrorDetails } from './errors.js';
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { startEmbedded } from './embedded/index.js';
export type { EmbeddedOptions, EmbeddedServer } from './embedded/index.js';
