import pg from 'pg';
import { tenantObjectName, type Tenant } from '../../catalog/index.js';
import { withDatabase } from '../../connection-url.js';
import { TenantryError } from '../../errors.js';

/** Where a tenant's rows live, as a move sees it. */
export interface Placement {
  readonly isolation: 'shared' | 'schema' | 'database';
  readonly server: string;
  /** The tenant's own database; null for the catalog database (shared tables, schema tenants). */
  readonly database: string | null;
  /** A schema tenant's data schema. */
  readonly schema: string | null;
  /**
   * A new schema copy's face schema while it is made (renamed to the tenant's face schema at the
   * cut-over, so the tenant's names keep resolving to the old copy until then).
   */
  readonly stagingFace?: string;
  /** The tenant's login roles there (admin first; none for a shared tenant without one). */
  readonly roles: readonly string[];
}

/** What a move needs of tenantry: connections and the catalog's URL. */
export interface PlacementUrls {
  /** The catalog database's operator URL. */
  readonly mainUrl: string;
  /** A registered server's operator URL. */
  serverUrl(server: string): Promise<string>;
}

/** The operator URL of the database holding `placement`'s rows. */
export async function placementUrl(urls: PlacementUrls, placement: Placement): Promise<string> {
  if (placement.isolation !== 'database') return urls.mainUrl;
  return withDatabase(await urls.serverUrl(placement.server), placement.database ?? '');
}

/**
 * Whether the new copy keeps the old copy's login role (a shared ↔ schema move: same cluster,
 * only its group changes).
 */
export function reusesRole(source: Placement, target: Placement): boolean {
  const role = target.roles[0];
  return (
    role !== undefined &&
    source.roles.includes(role) &&
    source.isolation !== 'database' &&
    target.isolation !== 'database'
  );
}

/** The tenant's placement now, with its login roles (from the catalog). */
export async function currentPlacement(db: Pick<pg.ClientBase, 'query'>, tenant: Tenant): Promise<Placement> {
  const { rows } = await db.query<{ role_name: string }>(
    `SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = $1
     ORDER BY permission <> 'admin', role_name`,
    [tenant.id],
  );
  return {
    isolation: tenant.isolation,
    server: tenant.server,
    database: tenant.isolation === 'database' ? tenant.databaseName : null,
    schema: tenant.isolation === 'schema' ? tenant.schemaName : null,
    roles: rows.map((r) => r.role_name),
  };
}

/** Refuses tenants a move cannot carry yet, with the reason (`TENANTRY_ERR_MOVE_UNSUPPORTED`). */
export async function checkMovable(db: Pick<pg.ClientBase, 'query'>, tenant: Tenant): Promise<void> {
  const problem = (text: string) =>
    new TenantryError('MOVE_UNSUPPORTED', { problem: `${tenant.name} ${text}` });
  if (tenant.kind !== 'regular')
    throw problem(`is a ${tenant.kind} tenant; only regular tenants hold rows to move`);
  const { rows } = await db.query<{ groups: number; columns: number }>(
    `SELECT (SELECT count(*)::int FROM tenantry.group_member WHERE tenant_id = $1) AS groups,
            (SELECT count(*)::int FROM tenantry.tenant_column WHERE tenant_id = $1) AS columns`,
    [tenant.id],
  );
  if ((rows[0]?.groups ?? 0) > 0) {
    throw problem(
      'belongs to a tenant group, whose rows it shares with other tenants; remove it from the group first',
    );
  }
  if ((rows[0]?.columns ?? 0) > 0) {
    throw problem(
      'has its own columns; moving tenant-specific columns, views and indexes is not supported yet',
    );
  }
}

/**
 * Refuses a tenant whose copy holds objects of its own (views, tenant indexes): a move does not
 * carry them yet. `db` is the old copy's database; the face schema holds a tenant's own objects
 * (for a schema tenant, also its generated tenant-facing views, which don't count).
 */
export async function checkNoOwnObjects(
  db: Pick<pg.ClientBase, 'query'>,
  tenant: Tenant,
  face: string,
  source: Placement,
): Promise<void> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('v', 'm', 'r', 'p')
       AND NOT (c.relkind = 'v' AND $2::name IS NOT NULL AND EXISTS (
         SELECT 1 FROM pg_class d JOIN pg_namespace dn ON dn.oid = d.relnamespace
         WHERE dn.nspname = $2 AND d.relname = c.relname))`,
    [face, source.schema],
  );
  // tenant indexes of a schema or database copy are the tenant's own (on shared tables, everyone's)
  const { rows: indexes } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'i' AND c.relname LIKE 'tenantry\\_ix\\_%' AND ($1 OR n.nspname = $2)`,
    [source.isolation === 'database', source.schema ?? ''],
  );
  if ((rows[0]?.n ?? 0) > 0 || (source.isolation !== 'shared' && (indexes[0]?.n ?? 0) > 0)) {
    throw new TenantryError('MOVE_UNSUPPORTED', {
      problem: `${tenant.name} has views or indexes of its own; moving them is not supported yet — export the tenant and import it with another isolation instead`,
    });
  }
}

/** The login role name for a new copy: the tenant's usual name unless the cluster already has it. */
export async function freeRoleName(
  serverDb: Pick<pg.ClientBase, 'query'>,
  tenant: Tenant,
  epoch: number,
): Promise<string> {
  const base = tenantObjectName(tenant.uuid);
  const { rows } = await serverDb.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [base]);
  return rows.length === 0 ? base : `${base}_m${epoch}`;
}
