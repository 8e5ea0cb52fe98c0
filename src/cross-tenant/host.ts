import type pg from 'pg';
import type { CatalogCache, Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { Lease, PoolTarget } from '../pool/index.js';
import type { TenantRoute } from '../session/index.js';
import type { ScanHost } from './lane.js';
import { tenantSelection } from './scan.js';

/** The parts of a tenantry instance a {@link ScanHost} is made of. */
export interface ScanHostParts {
  /** The operator's pool (reads the group membership). */
  readonly admin: pg.Pool;
  readonly catalog: CatalogCache;
  /** The application-role route of a tenant. */
  readonly route: (tenant: Tenant) => TenantRoute;
  readonly acquire: (target: PoolTarget) => Promise<Lease>;
  /** Throws the tenant's state error when it may not be used now. */
  readonly check: (tenant: Tenant) => void;
  /** The connection budget of the catalog server. */
  readonly budget: () => number;
}

/**
 * Active regular tenants matching `where`, evaluated in a READ ONLY transaction on an
 * application-role connection over the four tenant fields only (so `where` can read nothing else).
 */
async function selectTenants(parts: ScanHostParts, where: string | undefined): Promise<Tenant[]> {
  const candidates = parts.catalog.tenants().filter((t) => t.kind === 'regular' && t.state === 'active');
  if (candidates.length === 0) return [];
  // The selection runs in the catalog database, on the application role's connection of any
  // tenant there (the default tenant is always one) — also when every candidate is a database
  // tenant, on this server or another.
  const onMain = parts.catalog
    .tenants()
    .find((t) => t.isolation !== 'database' && t.server === 'main' && t.kind !== 'group');
  if (!onMain) return [];
  const { text, values } = tenantSelection(candidates, where);
  const app = parts.route(onMain).target;
  const lease = await parts.acquire({ ...app, tenantId: 0, tenantName: 'tenantry-scan' });
  // `where` comes from outside tenantry and may leave session state behind (a session-level
  // tenantry.tenant, an advisory lock…): the connection is reset before anyone else gets it.
  lease.markDirty();
  try {
    await lease.client.query("BEGIN READ ONLY; SET LOCAL statement_timeout = '10s'");
    const { rows } = await lease.client.query<{ id: number }>(text, values);
    await lease.client.query('COMMIT');
    const byId = new Map(candidates.map((t) => [t.id, t]));
    return rows.map((r) => byId.get(r.id)).filter((t): t is Tenant => t !== undefined);
  } catch (error) {
    throw new TenantryError(
      'INVALID_ARGUMENT',
      { what: 'tenant-where', problem: error instanceof Error ? error.message : String(error) },
      { cause: error },
    );
  } finally {
    lease.release();
  }
}

/** Builds the {@link ScanHost} of a tenantry instance. */
export function createScanHost(parts: ScanHostParts): ScanHost {
  const routes = new WeakMap<Tenant, TenantRoute>();
  return {
    selectTenants: (where) => selectTenants(parts, where),
    async groupMemberships(ids) {
      const { rows } = await parts.admin.query<{ tenant: number; group: number }>(
        'SELECT tenant_id AS tenant, group_id AS "group" FROM tenantry.group_member WHERE tenant_id = ANY ($1::int[])',
        [ids],
      );
      return rows;
    },
    check: parts.check,
    route(tenant) {
      let route = routes.get(tenant);
      if (!route) routes.set(tenant, (route = parts.route(tenant)));
      return route;
    },
    acquire: parts.acquire,
    connectionBudget: parts.budget,
  };
}
