export { Router } from './router.js';
export type { Identity, RouterOptions } from './router.js';
export {
  createTenantRole,
  dropTenantObjects,
  endSessions,
  provisionSchema,
  provisionTableForSchemas,
  tenantCredentialOwner,
} from './provision.js';
export { DatabaseProvisioner } from './database-provisioner.js';
