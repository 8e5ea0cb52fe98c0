import type { FastifyRequest } from 'fastify';
import type { Tenant } from '../catalog/index.js';
import { TenantryError, isTenantryError } from '../errors.js';
import type { Permission, Principal } from '../identity/index.js';
import type { Tenantry } from '../tenantry.js';
import type { AdminToken } from './admin-token.js';

/** Who a request acts as, once its token and tenant header were checked. */
export interface TenantAccess {
  readonly tenant: Tenant;
  readonly permission: Permission;
  /** The admin token was used (an operator acting for the tenant). */
  readonly operator: boolean;
  readonly principal: Principal | undefined;
}

/** The bearer token of a request; throws `TENANTRY_ERR_UNAUTHENTICATED` (401). */
export function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,8192})$/i.exec(header.trim()) : null;
  if (!match?.[1]) throw new TenantryError('UNAUTHENTICATED');
  return match[1];
}

/** Whether `ref` (an id, uuid or name, as in x-tenant-id) names `tenant`. */
function names(tenant: Tenant, ref: string): boolean {
  return (
    ref === String(tenant.id) ||
    ref.toLowerCase() === tenant.uuid ||
    ref.toLowerCase() === tenant.name.toLowerCase()
  );
}

function usable(tenant: Tenant): Tenant {
  if (tenant.state === 'disabled') throw new TenantryError('TENANT_DISABLED', { tenant: tenant.name });
  if (tenant.state === 'locked') throw new TenantryError('TENANT_LOCKED', { tenant: tenant.name });
  if (tenant.kind !== 'regular' && tenant.kind !== 'default') {
    throw new TenantryError('TENANT_KIND', {
      tenant: tenant.name,
      kind: tenant.kind,
      problem: 'it has no data of its own',
    });
  }
  return tenant;
}

/**
 * Checks a tenant-data request in an order that lets nobody probe which tenants exist: a
 * missing or bad token is 401; a tenant's token for another tenant than `x-tenant-id` is 403
 * (whether that tenant exists or not); only the operator (admin token) learns 404 for an unknown
 * tenant; a disabled or locked tenant is 403 with its own code.
 */
export async function tenantAccess(
  request: FastifyRequest,
  tenantry: Tenantry,
  admin: AdminToken,
): Promise<TenantAccess> {
  const token = bearer(request);
  const isAdmin = admin.matches(token);
  let principal: Principal | undefined;
  if (!isAdmin) {
    try {
      principal = await tenantry.authorize(token);
    } catch (error) {
      if (isTenantryError(error) && error.status === 401) throw error;
      if (isTenantryError(error, 'INVALID_ARGUMENT'))
        throw new TenantryError('UNAUTHENTICATED', {}, { cause: error });
      throw error;
    }
  }
  const header = request.headers['x-tenant-id'];
  const ref = typeof header === 'string' ? header.trim() : '';
  if (!ref)
    throw new TenantryError('INVALID_ARGUMENT', { what: 'header x-tenant-id', problem: 'it is required' });
  if (!principal) {
    const tenant = tenantry.catalog.get(/^[0-9]{1,9}$/.test(ref) ? Number(ref) : ref);
    if (!tenant) throw new TenantryError('TENANT_NOT_FOUND', { tenant: ref });
    return { tenant: usable(tenant), permission: 'admin', operator: true, principal: undefined };
  }
  const own = tenantry.catalog.get(principal.tenant.id);
  if (!own || !names(own, ref)) {
    throw new TenantryError('FORBIDDEN', {
      problem: 'The token does not belong to the tenant in x-tenant-id.',
    });
  }
  return { tenant: usable(own), permission: principal.permission, operator: false, principal };
}
