import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  tenantFaceSchema,
  tenantSearchPath,
  type CatalogRoles,
  type CredentialStore,
} from '../catalog/index.js';

/** Owner and field under which a tenant's login password is sealed. */
export function tenantCredentialOwner(tenantId: number): string {
  return `tenant:${tenantId}`;
}

/**
 * Creates the tenant's own login role inside the caller's transaction: not superuser, not
 * BYPASSRLS, no CREATEDB/CREATEROLE, a random password sealed in the catalog, registered so
 * that `tenantry.current_tenant()` resolves it from `session_user`. Shared tenants' roles join
 * the `tenants` group (base multi-tenant tables under RLS); schema and database tenants' roles
 * join only the `global` group (shared tables) and get their own schema.
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
  },
): Promise<void> {
  const password = randomBytes(24).toString('base64url');
  const role = pg.escapeIdentifier(tenant.roleName);
  const login = tenant.state === 'active' ? 'LOGIN' : 'NOLOGIN';
  await client.query(
    `CREATE ROLE ${role} ${login} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT
       PASSWORD ${pg.escapeLiteral(password)}
       IN ROLE ${pg.escapeIdentifier(tenant.shared ? roles.tenants : roles.global)}`,
  );
  await client.query(`ALTER ROLE ${role} SET search_path = ${tenantSearchPath(tenant.uuid)}`);
  await client.query('INSERT INTO tenantry.tenant_role (role_name, tenant_id) VALUES ($1, $2)', [
    tenant.roleName,
    tenant.id,
  ]);
  await credentials.put(client, tenantCredentialOwner(tenant.id), 'password', password);
}

/**
 * Creates a schema tenant's data schema (a copy of every registered multi-tenant table) and
 * face schema (their tenant-facing views, then the tenant's own objects).
 */
export async function provisionSchema(
  client: pg.ClientBase,
  schema: string,
  faceSchema: string,
  roleName: string,
): Promise<void> {
  await client.query('SELECT tenantry.provision_schema($1, $2, $3)', [schema, faceSchema, roleName]);
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
              (SELECT min(r.role_name) FROM tenantry.tenant_role r WHERE r.tenant_id = t.id)),
            tenantry.provision_foreign_keys(t.schema_name, $1::regclass)
     FROM tenantry.tenant t WHERE t.schema_name IS NOT NULL`,
    [table, tenantColumn],
  );
}

/**
 * Removes a tenant's role, schema and credentials inside the caller's transaction. Sessions of
 * the role that are still open are ended after the commit by {@link endSessions}.
 */
export async function dropTenantObjects(
  client: pg.ClientBase,
  tenant: { id: number; uuid: string; role: string | null; schemaName: string | null },
): Promise<void> {
  if (tenant.schemaName) {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenant.schemaName)} CASCADE`);
  }
  await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(tenantFaceSchema(tenant.uuid))} CASCADE`);
  if (tenant.role) {
    const role = pg.escapeIdentifier(tenant.role);
    await client.query(`DROP OWNED BY ${role}`);
    await client.query(`DROP ROLE IF EXISTS ${role}`);
  }
  await client.query('DELETE FROM tenantry.credential WHERE owner = $1', [tenantCredentialOwner(tenant.id)]);
}

/** Ends the backends a role still has open (after its tenant was dropped or disabled). */
export async function endSessions(db: Pick<pg.Pool, 'query'>, role: string): Promise<void> {
  await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
}
