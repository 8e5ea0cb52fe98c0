export { getTenant, runInTenantContext, tryGetTenant, tryGetTenantContext } from './tenant-context.js';
export type { TenantContext } from './tenant-context.js';
