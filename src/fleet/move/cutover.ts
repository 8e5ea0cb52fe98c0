import pg from 'pg';
import {
  inTransaction,
  tenantFaceSchema,
  tenantSearchPath,
  type CatalogRoles,
  type CredentialStore,
  type Tenant,
} from '../../catalog/index.js';
import { dropTenantDatabase } from '../../isolation/database.js';
import { createTenantRole, grantMembership, tenantCredentialOwner } from '../../isolation/provision.js';
import { reusesRole, type Placement } from './placement.js';
import { longQuery } from '../../pool/long-query.js';

const q = pg.escapeIdentifier;

/** Owner of the new copy's login password until the cut-over hands it to the tenant. */
export function moveCredentialOwner(tenantId: number): string {
  return `move:${tenantId}`;
}

/** What the cut-over changes in the catalog. */
export interface Switch {
  readonly tenant: Tenant;
  readonly source: Placement;
  readonly target: Placement;
  /** Measured figures kept with the move row until cleanup. */
  readonly stats: Record<string, unknown>;
}

/** The group a shared or schema tenant's login role belongs to. */
function groupOf(roles: CatalogRoles, placement: Placement): string {
  return placement.isolation === 'shared' ? roles.tenants : roles.global;
}

/** Whether a role exists (in the catalog's cluster). */
async function roleExists(client: pg.ClientBase, role: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rows.length > 0;
}

/**
 * The login roles at the cut-over. Kept (shared ↔ schema: same role, other group); or replaced:
 * the old ones lose their group and their login at once (dropped at cleanup), the new admin role
 * is registered with its sealed password — made now for a shared copy, made with the copy for a
 * schema or database one.
 */
async function switchRoles(
  client: pg.PoolClient,
  roles: CatalogRoles,
  credentials: CredentialStore,
  change: Switch,
): Promise<void> {
  const { tenant, source, target } = change;
  const admin = target.roles[0];
  if (reusesRole(source, target) && admin) {
    await client.query(`REVOKE ${q(groupOf(roles, source))} FROM ${q(admin)}`);
    await grantMembership(client, groupOf(roles, target), admin);
    return;
  }
  await client.query('DELETE FROM tenantry.tenant_role WHERE tenant_id = $1', [tenant.id]);
  for (const old of source.isolation === 'database' ? [] : source.roles) {
    if (!(await roleExists(client, old))) continue;
    await client.query(`ALTER ROLE ${q(old)} NOLOGIN`);
    await client.query(`REVOKE ${q(groupOf(roles, source))} FROM ${q(old)}`);
  }
  const password =
    target.isolation === 'shared' || !admin
      ? ''
      : await credentials.get(moveCredentialOwner(tenant.id), 'password');
  await credentials.remove(client, tenantCredentialOwner(tenant.id));
  if (!admin) return;
  if (target.isolation === 'shared') {
    await createTenantRole(client, roles, credentials, {
      id: tenant.id,
      uuid: tenant.uuid,
      roleName: admin,
      shared: true,
      state: tenant.state,
    });
    return;
  }
  if (target.isolation === 'schema' && tenant.state === 'active') {
    await client.query(`ALTER ROLE ${q(admin)} LOGIN`);
  }
  await client.query(
    "INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ($1, $2, 'admin')",
    [admin, tenant.id],
  );
  await credentials.put(client, tenantCredentialOwner(tenant.id), 'password', password);
}

/**
 * The cut-over: in ONE catalog transaction, with the tenant's row locked, points the tenant at
 * the new copy — placement, login roles and their sealed passwords, the face schema its names
 * resolve through, a new placement epoch (the application role's prelude of every process
 * checks it) — and marks the move for cleanup. Either all of it commits or none: a mover killed
 * here leaves the tenant on the old copy.
 */
export async function switchPlacement(
  admin: pg.Pool,
  roles: CatalogRoles,
  credentials: CredentialStore,
  change: Switch,
): Promise<void> {
  const { tenant, source, target } = change;
  const face = tenantFaceSchema(tenant.uuid);
  await inTransaction(admin, async (client) => {
    await client.query('SELECT 1 FROM tenantry.tenant WHERE id = $1 FOR UPDATE', [tenant.id]);
    await switchRoles(client, roles, credentials, change);
    // Names must resolve to the new copy at once: a new schema copy's face takes the tenant's
    // face name; a schema copy's face goes when its names should fall through to the shared tables.
    // Not when moving into a database: a statement waiting here would then fall through to the
    // shared tables, a third place — that face is dropped at cleanup, once such statements ended.
    if (target.isolation === 'schema' || (source.isolation === 'schema' && target.isolation === 'shared')) {
      await client.query(`DROP SCHEMA IF EXISTS ${q(face)} CASCADE`);
    }
    if (target.isolation === 'schema' && target.stagingFace) {
      await client.query(`ALTER SCHEMA ${q(target.stagingFace)} RENAME TO ${q(face)}`);
    }
    await client.query(
      `UPDATE tenantry.tenant SET isolation = $2, server = $3, database_name = $4, schema_name = $5,
              placement_epoch = placement_epoch + 1, updated_at = now()
       WHERE id = $1`,
      [tenant.id, target.isolation, target.server, target.database, target.schema],
    );
    await client.query(
      `UPDATE tenantry.tenant_move SET phase = 'cleanup', stats = stats || $2::jsonb, updated_at = now()
       WHERE tenant_id = $1`,
      [tenant.id, JSON.stringify(change.stats)],
    );
    await credentials.remove(client, moveCredentialOwner(tenant.id));
  });
}

/**
 * Creates a schema copy's login role before the copy is made: not registered and without LOGIN
 * until the cut-over, a member of the global group, the tenant's search path, its password sealed
 * for the move.
 */
export async function createStagedRole(
  client: pg.ClientBase,
  roles: CatalogRoles,
  credentials: CredentialStore,
  tenant: Tenant,
  role: string,
  password: string,
): Promise<void> {
  if (!(await roleExists(client, role))) {
    await client.query(
      `CREATE ROLE ${q(role)} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT PASSWORD ${pg.escapeLiteral(password)}`,
    );
    await grantMembership(client, roles.global, role);
    await client.query(`ALTER ROLE ${q(role)} SET search_path = ${tenantSearchPath(tenant.uuid)}`);
  } else {
    await client.query(`ALTER ROLE ${q(role)} PASSWORD ${pg.escapeLiteral(password)}`);
  }
  await credentials.put(client, moveCredentialOwner(tenant.id), 'password', password);
}

/** Ends the sessions of `roles` on a cluster and drops them (their objects in `db`'s database too). */
export async function dropRoles(db: Pick<pg.ClientBase, 'query'>, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await db.query(
    'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = ANY($1::name[])',
    [[...names]],
  );
  // member roles (write, read) first: they belong to the admin role
  for (const name of [...names].reverse()) {
    if ((await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rows.length === 0) continue;
    await db.query(`DROP OWNED BY ${q(name)}`);
    await db.query(`DROP ROLE ${q(name)}`);
  }
}

/**
 * Removes a tenant database copy and its roles (the old copy after a cut-over, or a half-made new
 * copy when a move is rolled back). Missing ones are fine.
 */
export async function dropDatabaseCopy(serverUrl: string, placement: Placement): Promise<void> {
  if (!placement.database) return;
  await dropTenantDatabase(serverUrl, placement.database, placement.roles);
}

/** Drops a schema copy's data schema (and a staging face schema) from the catalog database. */
export async function dropSchemaCopy(db: Pick<pg.ClientBase, 'query'>, placement: Placement): Promise<void> {
  for (const schema of [placement.schema, placement.stagingFace]) {
    if (schema) await db.query(longQuery(`DROP SCHEMA IF EXISTS ${q(schema)} CASCADE`));
  }
}
