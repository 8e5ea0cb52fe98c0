export { TenantStore } from './tenant-store.js';
export type { CreateTenantInput, TenantDroppedHook } from './tenant-store.js';
export { LoginReadiness } from './login-ready.js';
