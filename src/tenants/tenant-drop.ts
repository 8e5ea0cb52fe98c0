import pg from 'pg';
import {
  MOVE_LOCK,
  TENANT_COLUMNS,
  toTenant,
  type CatalogCache,
  type CatalogRoles,
  type CredentialStore,
  type Tenant,
  type TenantRef,
  type TenantRow,
} from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import {
  dropTenantObjects,
  endSessionsOf,
  roleOids,
  tenantCredentialOwner,
  type DatabaseProvisioner,
} from '../isolation/index.js';
import { TENANT_OBJECTS_LOCK } from './orphans.js';
import { longQuery } from '../pool/long-query.js';

/** SQL condition matching a tenant reference passed as text in `$1`. */
export function whereRef(ref: TenantRef): string {
  if (typeof ref === 'number' || /^-?\d+$/.test(ref)) return 'id = $1::integer';
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref)) return 'uuid = $1::uuid';
  return 'lower(name) = lower($1)';
}

/**
 * Records (in tenantry.tenant_object_intent) a tenant's database and roles on `server` that are
 * about to be created or dropped outside a catalog transaction; repair removes them when the
 * tenant row does not exist. The caller holds the tenant's advisory lock.
 */
export async function recordObjects(
  client: pg.ClientBase,
  action: 'create' | 'drop',
  uuid: string,
  server: string,
  database: string,
  roles: readonly string[],
): Promise<void> {
  await client.query(
    `INSERT INTO tenantry.tenant_object_intent (server, kind, name, tenant_uuid, action)
     SELECT $1, kind, name, $2, $3 FROM unnest($4::text[], $5::name[]) AS o(kind, name)
     ON CONFLICT (server, kind, name) DO UPDATE SET tenant_uuid = EXCLUDED.tenant_uuid, action = EXCLUDED.action`,
    [server, uuid, action, ['database', ...roles.map(() => 'role')], [database, ...roles]],
  );
}

/** What dropping a tenant needs. */
export interface DropDeps {
  readonly pool: pg.Pool;
  readonly cache: CatalogCache;
  readonly roles: CatalogRoles;
  readonly credentials: CredentialStore;
  readonly databases: DatabaseProvisioner;
  /** Called after the commit, to close the tenant's pools. */
  readonly onDropped: (tenant: Tenant) => void;
}

/**
 * Deletes the tenant's rows from every multi-tenant table as the maintenance role; a foreign key
 * between multi-tenant tables only changes the order (retried until every table is done).
 */
async function deleteRows(
  client: pg.ClientBase,
  maint: string,
  tenantId: number,
): Promise<Record<string, number>> {
  await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(maint)}`);
  const { rows: tables } = await client.query<{ qualified: string; col: string }>(
    `SELECT format('%I.%I', schema_name, table_name) AS qualified, tenant_column AS col
     FROM tenantry.registered_table WHERE kind = 'multi_tenant' ORDER BY 1`,
  );
  const deleted: Record<string, number> = {};
  let pending = tables;
  for (let round = 0; pending.length > 0 && round <= tables.length; round++) {
    const failed: typeof pending = [];
    for (const t of pending) {
      await client.query('SAVEPOINT drop_table');
      try {
        const r = await client.query(
          longQuery(`DELETE FROM ${t.qualified} WHERE ${pg.escapeIdentifier(t.col)} = $1`, [tenantId]),
        );
        deleted[t.qualified] = (deleted[t.qualified] ?? 0) + (r.rowCount ?? 0);
        await client.query('RELEASE SAVEPOINT drop_table');
      } catch (error) {
        if (!(error instanceof pg.DatabaseError && error.code === '23503')) throw error;
        await client.query('ROLLBACK TO SAVEPOINT drop_table');
        failed.push(t);
      }
    }
    pending = failed;
  }
  await client.query('RESET ROLE');
  return deleted;
}

/**
 * Refuses to drop a tenant that is being moved (`TENANTRY_ERR_MOVE_IN_PROGRESS`): the move's
 * record would go with the tenant while its copy (a database and role on the target server) stayed
 * behind, out of reach of `move --abort` and of repair. The move lock is held for the rest of the
 * drop's transaction, so no move starts meanwhile.
 */
async function refuseDuringMove(client: pg.ClientBase, tenant: Tenant): Promise<void> {
  const { rows } = await client.query<{ free: boolean; moving: boolean }>(
    `SELECT pg_try_advisory_xact_lock($1, $2) AS free,
            EXISTS (SELECT 1 FROM tenantry.tenant_move WHERE tenant_id = $2) AS moving`,
    [MOVE_LOCK, tenant.id],
  );
  const row = rows[0];
  if (row?.free && !row.moving) return;
  throw new TenantryError('MOVE_IN_PROGRESS', {
    tenant: tenant.name,
    problem: row?.free
      ? 'an unfinished move must be resumed or aborted before the tenant is dropped'
      : 'another process is moving it right now',
  });
}

/**
 * Deletes the tenant and all its rows in every multi-tenant table, in one transaction, then
 * its login roles (admin, write, read), schemas or database and credentials; the roles' open
 * sessions are ended. Requires `{ force: true }` (`TENANTRY_ERR_FORCE_REQUIRED`); the default
 * tenant cannot be dropped. Returns the number of rows deleted per table.
 */
export async function dropTenant(
  deps: DropDeps,
  ref: TenantRef,
  options: { force?: boolean },
): Promise<Record<string, number>> {
  if (options.force !== true) throw new TenantryError('FORCE_REQUIRED', { operation: 'Dropping a tenant' });
  const client = await deps.pool.connect();
  let locked: string | undefined;
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<TenantRow>(
      `SELECT ${TENANT_COLUMNS} FROM tenantry.tenant WHERE ${whereRef(ref)} FOR UPDATE`,
      [String(ref)],
    );
    const tenant = rows[0] ? toTenant(rows[0]) : undefined;
    if (!tenant) throw new TenantryError('TENANT_NOT_FOUND', { tenant: String(ref) });
    if (tenant.kind === 'default') {
      throw new TenantryError('TENANT_KIND', {
        tenant: tenant.name,
        kind: 'default',
        problem: 'it cannot be dropped',
      });
    }
    await refuseDuringMove(client, tenant);
    const deleted = await deleteRows(client, deps.roles.maint, tenant.id);
    const { rows: roleRows } = await client.query<{ role_name: string }>(
      // members (read, write) first, then the admin role they belong to
      "SELECT role_name FROM tenantry.tenant_role WHERE tenant_id = $1 ORDER BY permission = 'admin', role_name",
      [tenant.id],
    );
    const roles = roleRows.map((r) => r.role_name);
    // pg_stat_activity knows dropped roles by oid only
    const oids = await roleOids(client, roles);
    const ownDatabase = tenant.isolation === 'database' && tenant.databaseName;
    if (ownDatabase) {
      await deps.credentials.remove(client, tenantCredentialOwner(tenant.id));
      // Dropped after the commit: recorded in the same transaction (under the tenant's lock, held
      // until they are gone), so that repair finishes the drop when this process dies first.
      await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [TENANT_OBJECTS_LOCK, tenant.uuid]);
      locked = tenant.uuid;
      await recordObjects(client, 'drop', tenant.uuid, tenant.server, ownDatabase, roles);
    } else await dropTenantObjects(client, tenant, roles);
    await client.query('DELETE FROM tenantry.tenant WHERE id = $1', [tenant.id]);
    await client.query('COMMIT');
    deps.onDropped(tenant);
    if (ownDatabase) {
      await deps.databases.drop(tenant.server, ownDatabase, roles);
      await client.query('DELETE FROM tenantry.tenant_object_intent WHERE tenant_uuid = $1', [tenant.uuid]);
    } else await endSessionsOf(deps.pool, oids);
    await deps.cache.reload();
    return deleted;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    if (locked !== undefined) {
      await client
        .query('SELECT pg_advisory_unlock($1, hashtext($2))', [TENANT_OBJECTS_LOCK, locked])
        .catch(() => undefined);
    }
    client.release();
  }
}
