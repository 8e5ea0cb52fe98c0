import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  tenantFaceSchema,
  tenantSearchPath,
  type CatalogRoles,
  type CredentialStore,
} from '../catalog/index.js';
import { longQuery } from '../pool/long-query.js';

/** Owner and field under which a tenant's login password is sealed. */
export function tenantCredentialOwner(tenantId: number): string {
  return `tenant:${tenantId}`;
}

/**
 * Makes `member` a member of `group` that inherits its privileges. From PostgreSQL 16 on the
 * membership is granted `SET FALSE`: the member cannot `SET ROLE` to the group, nor make it own
 * objects (older servers cannot say so; the tenant still resolves from `session_user`).
 */
export async function grantMembership(client: pg.ClientBase, group: string, member: string): Promise<void> {
  const { rows } = await client.query<{ v: number }>(
    "SELECT current_setting('server_version_num')::int AS v",
  );
  const options = (rows[0]?.v ?? 0) >= 160000 ? ' WITH INHERIT TRUE, SET FALSE' : '';
  await client.query(`GRANT ${pg.escapeIdentifier(group)} TO ${pg.escapeIdentifier(member)}${options}`);
}

/**
 * Creates the tenant's own login role inside the caller's transaction: not superuser, not
 * BYPASSRLS, no CREATEDB/CREATEROLE, a random password sealed in the catalog, registered so
 * that `tenantry.current_tenant()` resolves it from `session_user`. Shared tenants' roles join
 * the `tenants` group (base multi-tenant tables under RLS); schema and database tenants' roles
 * join only the `global` group (shared tables) and get their own schema. It is the tenant's
 * `admin` role; its `write` and `read` roles are members of it (see permission-roles.ts).
 */
export async function createTenantRole(
  client: pg.ClientBase,
  roles: CatalogRoles,
  credentials: CredentialStore,
  tenant: {
    id: number;
    uuid: string;
    roleName: string;
    shared: boolean;
    state: 'active' | 'disabled' | 'locked';
    /** The tenant's statement limit, when it has one (a role added to an existing tenant). */
    statementTimeoutMs?: number | null;
  },
): Promise<void> {
  const password = randomBytes(24).toString('base64url');
  const role = pg.escapeIdentifier(tenant.roleName);
  const login = tenant.state === 'active' ? 'LOGIN' : 'NOLOGIN';
  await client.query(
    `CREATE ROLE ${role} ${login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT
       PASSWORD ${pg.escapeLiteral(password)}`,
  );
  await grantMembership(client, tenant.shared ? roles.tenants : roles.global, tenant.roleName);
  await client.query(`ALTER ROLE ${role} SET search_path = ${tenantSearchPath(tenant.uuid)}`);
  if (tenant.statementTimeoutMs)
    await setRoleStatementTimeout(client, tenant.roleName, tenant.statementTimeoutMs);
  await client.query(
    "INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ($1, $2, 'admin')",
    [tenant.roleName, tenant.id],
  );
  await credentials.put(client, tenantCredentialOwner(tenant.id), 'password', password);
}

/**
 * Creates a schema tenant's data schema (a copy of every registered multi-tenant table) and
 * face schema (their tenant-facing views, then the tenant's own objects): cloned from the
 * template schema kept at the current migration version (`tenantry.clone_schema`, migration 19,
 * docs/fleet.md), which also records the tenant's migration version.
 */
export async function provisionSchema(
  client: pg.ClientBase,
  schema: string,
  faceSchema: string,
  roleName: string,
): Promise<void> {
  await client.query(longQuery('SELECT tenantry.clone_schema($1, $2, $3)', [schema, faceSchema, roleName]));
}

/**
 * Adds one newly registered multi-tenant table to every schema tenant, in the caller's
 * transaction (its foreign keys to other multi-tenant tables point at the tenant's copies).
 */
export async function provisionTableForSchemas(
  client: pg.ClientBase,
  table: string,
  tenantColumn: string,
): Promise<void> {
  await client.query(
    `SELECT tenantry.provision_table(t.schema_name, 'tenantry_f_' || replace(t.uuid::text, '-', ''), $1::regclass, $2,
              (SELECT r.role_name FROM tenantry.tenant_role r WHERE r.tenant_id = t.id AND r.permission = 'admin')),
            tenantry.provision_foreign_keys(t.schema_name, $1::regclass)
     FROM tenantry.tenant t WHERE t.schema_name IS NOT NULL`,
    [table, tenantColumn],
  );
}

/**
 * Removes a tenant's login roles (`roles`: admin, write, read), schemas and credentials inside
 * the caller's transaction. Sessions of the roles that are still open are ended after the
 * commit by {@link endSessions}.
 */
export async function dropTenantObjects(
  client: pg.ClientBase,
  tenant: { id: number; uuid: string; schemaName: string | null },
  roles: readonly string[],
): Promise<void> {
  if (tenant.schemaName) {
    await client.query(longQuery(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenant.schemaName)} CASCADE`));
  }
  await client.query(
    longQuery(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenantFaceSchema(tenant.uuid))} CASCADE`),
  );
  for (const name of roles) {
    const role = pg.escapeIdentifier(name);
    await client.query(longQuery(`DROP OWNED BY ${role}`));
    await client.query(`DROP ROLE IF EXISTS ${role}`);
  }
  await client.query('DELETE FROM tenantry.credential WHERE owner = $1', [tenantCredentialOwner(tenant.id)]);
}

/** The oids of existing roles among `roles` (pg_stat_activity still shows them once dropped). */
export async function roleOids(
  db: Pick<pg.ClientBase, 'query'>,
  roles: readonly string[],
): Promise<number[]> {
  const { rows } = await db.query<{ oid: number }>(
    'SELECT oid::int AS oid FROM pg_roles WHERE rolname = ANY($1::name[])',
    [[...roles]],
  );
  return rows.map((r) => r.oid);
}

/**
 * Ends the backends of the roles with these oids — also after the roles were dropped, when
 * pg_stat_activity no longer knows their names.
 */
export async function endSessionsOf(db: Pick<pg.Pool, 'query'>, oids: readonly number[]): Promise<void> {
  if (oids.length === 0) return;
  // (waits up to 5 s for each backend to be gone)
  await db.query(
    'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usesysid = ANY($1::oid[])',
    [[...oids]],
  );
}

/** Ends the backends the given (existing) roles have open. */
export async function endSessions(
  db: Pick<pg.Pool, 'query'>,
  roles: string | readonly string[],
): Promise<void> {
  const names = typeof roles === 'string' ? [roles] : [...roles];
  if (names.length === 0) return;
  await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY($1::name[])', [
    names,
  ]);
}

/** A per-permission login role of a tenant (see permission-roles.ts). */
export interface MemberRoleSpec {
  /** Its name, e.g. `tenantry_t_<uuid>_r`. */
  readonly name: string;
  /** The tenant's own (admin) role it is a member of. */
  readonly admin: string;
  readonly password: string;
  /** LOGIN (an active tenant) or NOLOGIN. */
  readonly login: boolean;
  /** The tenant's statement limit (tenants.setLimits), set on the role as on its others. */
  readonly statementTimeoutMs?: number | null;
}

/**
 * Sets a tenant login role's statement limit (`null`: removes it). Every role of a tenant gets
 * its `statementTimeoutMs` (tenants.setLimits), also one created after the limit was set.
 */
export async function setRoleStatementTimeout(
  db: Pick<pg.ClientBase, 'query'>,
  role: string,
  ms: number | null,
): Promise<void> {
  const name = pg.escapeIdentifier(role);
  await db.query(
    ms === null
      ? `ALTER ROLE ${name} RESET statement_timeout`
      : `ALTER ROLE ${name} SET statement_timeout = ${Math.trunc(ms)}`,
  );
}

/**
 * Creates (or, when a failed earlier attempt left it behind, resets) a tenant's per-permission
 * login role on the server `client` is connected to: not superuser, not BYPASSRLS, no
 * CREATEDB/CREATEROLE, a member of the tenant's admin role that inherits its privileges.
 */
export async function createMemberRole(client: pg.ClientBase, spec: MemberRoleSpec): Promise<void> {
  const role = pg.escapeIdentifier(spec.name);
  const login = spec.login ? 'LOGIN' : 'NOLOGIN';
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [spec.name]);
  await client.query(
    `${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${role} ${login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
       INHERIT PASSWORD ${pg.escapeLiteral(spec.password)}`,
  );
  await grantMembership(client, spec.admin, spec.name);
  if (spec.statementTimeoutMs) await setRoleStatementTimeout(client, spec.name, spec.statementTimeoutMs);
}
