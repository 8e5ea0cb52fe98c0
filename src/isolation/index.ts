export { Router, tenantPoolIdentity } from './router.js';
export type { Identity, RouterOptions } from './router.js';
export {
  createTenantRole,
  setRoleStatementTimeout,
  dropTenantObjects,
  endSessions,
  endSessionsOf,
  grantMembership,
  provisionSchema,
  provisionTableForSchemas,
  roleOids,
  tenantCredentialOwner,
} from './provision.js';
export { DatabaseProvisioner } from './database-provisioner.js';
export { PermissionRoles, permissionPasswordField, permissionRoleName } from './permission-roles.js';
export type { PermissionRolesOptions } from './permission-roles.js';
