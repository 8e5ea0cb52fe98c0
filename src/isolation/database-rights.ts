import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expandIncludes } from '../catalog/index.js';

const sql = (name: string) =>
  expandIncludes(readFileSync(fileURLToPath(new URL(`../sql/dataplane/${name}`, import.meta.url)), 'utf8'));
const rightsSql = sql('tenant-rights.sql');
const wallSql = sql('tenant-wall.sql');

/** The roles a tenant database grants to. */
export interface DatabaseGrantees {
  /** The application role. */
  readonly appRole: string;
  /** The tenant's own (admin) role. */
  readonly role: string;
}

/**
 * Installs, in a database tenant's own database, what rights inside the tenant need
 * (docs/rights.md): the permission column of `tenantry.tenant_role`, the write guard (also on
 * `tenantry.sequence_value`) and — when `client` is a superuser, as creating event triggers and
 * revoking built-ins needs — the DDL guard and the first wall. Idempotent; answers whether the
 * wall is in place.
 */
export async function installDatabaseRights(
  client: pg.ClientBase,
  grantees: DatabaseGrantees,
): Promise<boolean> {
  await client.query(
    rightsSql
      .replace(/\{\{app\}\}/g, pg.escapeIdentifier(grantees.appRole))
      .replace(/\{\{role\}\}/g, pg.escapeIdentifier(grantees.role)),
  );
  const { rows } = await client.query<{ su: boolean }>(
    'SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user',
  );
  if (rows[0]?.su)
    await client.query(wallSql.replace(/\{\{app_literal\}\}/g, pg.escapeLiteral(grantees.appRole)));
  return hasRightsWall(client);
}

/** Whether the database `client` is connected to refuses DDL from read and write users. */
export async function hasRightsWall(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'tenantry_rights_ddl' AND evtenabled <> 'D') AS found",
  );
  return rows[0]?.found === true;
}

/**
 * Registers a per-permission role in a tenant database, so that `tenantry.current_tenant()`
 * resolves it there, with the tenant's search_path in that database.
 */
export async function registerDatabaseRole(
  client: pg.ClientBase,
  role: { name: string; tenantId: number; permission: string; database: string; searchPath: string },
): Promise<void> {
  await client.query(
    `INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ($1, $2, $3)
     ON CONFLICT (role_name) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, permission = EXCLUDED.permission`,
    [role.name, role.tenantId, role.permission],
  );
  await client.query(
    `ALTER ROLE ${pg.escapeIdentifier(role.name)} IN DATABASE ${pg.escapeIdentifier(role.database)}
       SET search_path = ${role.searchPath}`,
  );
}
