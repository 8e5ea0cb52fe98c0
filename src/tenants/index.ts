export { TenantStore } from './tenant-store.js';
export type { CreateTenantInput, SetTablespaceOptions, TenantDroppedHook } from './tenant-store.js';
export { LoginReadiness } from './login-ready.js';
export type { OrphanObject, RepairAction, RepairOptions, RepairReport } from './tenant-repair.js';
