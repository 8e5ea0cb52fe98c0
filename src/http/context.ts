import type { FastifyRequest } from 'fastify';
import type { Gateway } from '../gateway/index.js';
import type { Logger } from '../logger.js';
import type { TenantMetrics } from '../metrics/index.js';
import type { TenantDb } from '../session/index.js';
import type { Tenantry } from '../tenantry.js';
import { TenantryError } from '../errors.js';
import { bearer, tenantAccess, type TenantAccess } from './access.js';
import type { AdminToken } from './admin-token.js';

/** Limits of the SQL the HTTP API runs for tenants. */
export interface SqlLimits {
  /** Statement timeout of `/v1/sql`, ms (table reads are keyset queries with a LIMIT; the tenant's own limit, tenants.setLimits, applies to them). */
  readonly statementTimeoutMs: number;
  /** Rows `/v1/sql` answers at most (the answer says when it truncated). */
  readonly rowLimit: number;
}

/** What every route plugin gets. */
export interface HttpContext {
  readonly tenantry: Tenantry;
  readonly admin: AdminToken;
  readonly metrics: TenantMetrics;
  readonly limits: SqlLimits;
  readonly logger: Logger;
  /** The gateway, when one runs in this process (for the admin view). */
  readonly gateway: (() => Gateway | undefined) | undefined;
}

/** The tenant a request acts for, recorded for the request log. */
export function noteTenant(request: FastifyRequest, tenant: string): void {
  (request as FastifyRequest & { tenantName?: string }).tenantName = tenant;
}

/**
 * Checks the request's token and tenant, then runs `fn` as that tenant and records the query in
 * the tenant metrics. `sql: 'tenant'` is for SQL the tenant wrote (`/v1/sql`): it runs under the
 * tenant's own login role for the user's permission (never the shared application role), in one
 * transaction with the statement timeout. `sql: 'fixed'` is for tenantry's own statements
 * (seed 002's users, table pages): the application role with the tenant setting, one round trip
 * per statement, read-only for users with the read permission.
 */
export async function asTenant<T>(
  ctx: HttpContext,
  request: FastifyRequest,
  sql: 'tenant' | 'fixed',
  fn: (db: TenantDb, access: TenantAccess) => Promise<T>,
): Promise<T> {
  const access = await tenantAccess(request, ctx.tenantry, ctx.admin);
  noteTenant(request, access.tenant.name);
  const started = process.hrtime.bigint();
  let ok = false;
  try {
    const result =
      sql === 'fixed'
        ? await ctx.tenantry.withTenant(access.tenant, (db) => fn(db, access), {
            permission: access.permission,
          })
        : await ctx.tenantry.withTenant(
            await ctx.tenantry.prepareLoginRole(access.tenant),
            (db) =>
              db.transaction(async (tx) => {
                // The HTTP limit, or the tenant's own (tenants.setLimits) when that is stricter.
                const own = access.tenant.statementTimeoutMs ?? Infinity;
                const timeout = Math.trunc(Math.min(ctx.limits.statementTimeoutMs, own));
                await tx.query(`SET LOCAL statement_timeout = ${timeout}`);
                return fn(tx, access);
              }),
            { identity: 'tenant', permission: access.permission },
          );
    ok = true;
    return result;
  } finally {
    ctx.metrics.observe(access.tenant.name, Number(process.hrtime.bigint() - started) / 1e9, ok);
  }
}

/** A preHandler that requires the admin token (401 `TENANTRY_ERR_UNAUTHENTICATED` otherwise). */
export function adminOnly(ctx: HttpContext): (request: FastifyRequest) => Promise<void> {
  return (request) => {
    if (!ctx.admin.matches(bearer(request))) return Promise.reject(new TenantryError('UNAUTHENTICATED'));
    return Promise.resolve();
  };
}
