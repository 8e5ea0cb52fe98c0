import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expandIncludes, tenantFaceSchema } from '../catalog/index.js';
import { urlParts, withDatabase } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import { installTenantObjects } from './database-objects.js';
import { hasRightsWall, installDatabaseRights, registerDatabaseRole } from './database-rights.js';
import { createMemberRole, type MemberRoleSpec } from './provision.js';

/** A multi-tenant table to copy into a tenant database. */
export interface TableCopy {
  readonly schema: string;
  readonly table: string;
  readonly tenantColumn: string;
  /** Its definition, from `tenantry.table_ddl()` on the catalog database, without foreign keys. */
  readonly create: readonly string[];
  /** Its foreign keys to other multi-tenant tables, run once every copy exists. */
  readonly foreignKeys: readonly string[];
}

/** A sequence definition copied into tenant databases. */
export interface SequenceDef {
  readonly name: string;
  readonly kind: 'multi_tenant' | 'shared';
  readonly start: string;
  readonly increment: string;
}

/**
 * Copies sequence definitions into a tenant database. A shared sequence there numbers within
 * that database only (PostgreSQL cannot draw from another server's sequence in a default).
 */
export async function syncSequences(client: pg.ClientBase, sequences: readonly SequenceDef[]): Promise<void> {
  for (const seq of sequences) {
    await client.query(
      `INSERT INTO tenantry.sequence (name, kind, start, increment) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, start = EXCLUDED.start, increment = EXCLUDED.increment`,
      [seq.name, seq.kind, seq.start, seq.increment],
    );
    if (seq.kind === 'shared') {
      await client.query(
        `CREATE SEQUENCE IF NOT EXISTS tenantry.${pg.escapeIdentifier(`seq_${seq.name}`)} START ${Number(seq.start)} INCREMENT ${Number(seq.increment)}`,
      );
    }
  }
}

/** Everything needed to create one database tenant's database. */
export interface DatabasePlan {
  /** Operator URL of the server the database goes on (any database on it). */
  readonly serverUrl: string;
  readonly database: string;
  readonly role: string;
  readonly rolePassword: string;
  /** The application role on that server (it must exist there). */
  readonly appRole: string;
  readonly tenant: { readonly id: number; readonly uuid: string; readonly name: string };
  readonly tables: readonly TableCopy[];
  /** Global tables, read through postgres_fdw from the catalog database. */
  readonly shared: readonly { readonly schema: string; readonly table: string }[];
  /** Sequence definitions (values live in the tenant's database). */
  readonly sequences: readonly SequenceDef[];
  /** Where and as whom postgres_fdw reaches the global tables. */
  readonly fdw: { readonly url: string; readonly user: string; readonly password: string };
  /** The catalog's settings the tenant's own objects obey (max_tenant_indexes_per_table). */
  readonly settings?: readonly { readonly name: string; readonly value: string }[];
}

const dataPlane = expandIncludes(
  readFileSync(fileURLToPath(new URL('../sql/dataplane/tenant-database.sql', import.meta.url)), 'utf8'),
);

/**
 * Runs `fn` with an operator client on `url` (named `application` in pg_stat_activity), then
 * closes it. A connection that dies fails the query in flight; its error event alone never crashes.
 */
export async function withClient<T>(
  url: string,
  fn: (client: pg.Client) => Promise<T>,
  application = 'tenantry-operator',
): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: application });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates a database tenant's role and database on its server: the data plane (tenant,
 * current_tenant()), a copy of every multi-tenant table with forced row-level security, the
 * global tables as postgres_fdw foreign tables, and what the tenant's own views, columns and
 * indexes need (database-objects.ts). Not transactional (CREATE DATABASE cannot be): on failure
 * everything created is removed again before the error is rethrown.
 */
export async function createTenantDatabase(plan: DatabasePlan): Promise<void> {
  const role = pg.escapeIdentifier(plan.role);
  const database = pg.escapeIdentifier(plan.database);
  try {
    await withClient(plan.serverUrl, async (client) => {
      await client.query(
        `CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(plan.rolePassword)}`,
      );
      await client.query(`CREATE DATABASE ${database}`);
    });
    await withClient(withDatabase(plan.serverUrl, plan.database), async (client) => {
      await client.query('BEGIN');
      await client.query(renderDataPlane(plan));
      await installDatabaseRights(client, plan);
      for (const table of plan.tables) await copyTable(client, plan, table);
      for (const table of plan.tables)
        for (const statement of table.foreignKeys) await client.query(statement);
      await importShared(client, plan);
      await syncSequences(client, plan.sequences);
      await installTenantObjects(client, plan);
      await client.query('COMMIT');
    });
  } catch (error) {
    await dropTenantDatabase(plan.serverUrl, plan.database, plan.role).catch(() => undefined);
    throw error;
  }
}

function renderDataPlane(plan: DatabasePlan): string {
  const values: Record<string, string> = {
    app: pg.escapeIdentifier(plan.appRole),
    role: pg.escapeIdentifier(plan.role),
    database: pg.escapeIdentifier(plan.database),
    id: String(Math.trunc(plan.tenant.id)),
    uuid: pg.escapeLiteral(plan.tenant.uuid),
    name: pg.escapeLiteral(plan.tenant.name),
    role_literal: pg.escapeLiteral(plan.role),
    face: pg.escapeIdentifier(tenantFaceSchema(plan.tenant.uuid)),
  };
  return dataPlane.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
}

/** The roles a tenant database grants to. */
type Grantees = Pick<DatabasePlan, 'appRole' | 'role'>;

/** Creates (if missing) and secures one multi-tenant table's copy in a tenant database. */
export async function copyTable(client: pg.ClientBase, plan: Grantees, table: TableCopy): Promise<void> {
  const qualified = `${pg.escapeIdentifier(table.schema)}.${pg.escapeIdentifier(table.table)}`;
  const column = pg.escapeIdentifier(table.tenantColumn);
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(table.schema)}`);
  await client.query(
    `GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(table.schema)} TO ${pg.escapeIdentifier(plan.appRole)}`,
  );
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [qualified]);
  if (!(exists.rows[0] as { found: boolean }).found) {
    for (const statement of table.create) await client.query(statement);
  }
  const { rows: exprRows } = await client.query<{ expr: string }>('SELECT tenantry.tenant_expr($1) AS expr', [
    plan.appRole,
  ]);
  const tenantExpr = (exprRows[0] as { expr: string }).expr;
  const policy = `${column} = (SELECT ${tenantExpr})`;
  await client.query(`ALTER TABLE ${qualified} ALTER COLUMN ${column} SET DEFAULT ${tenantExpr}`);
  await client.query(`ALTER TABLE ${qualified} DROP CONSTRAINT IF EXISTS tenantry_tenant_fk`);
  await client.query(
    `ALTER TABLE ${qualified} ADD CONSTRAINT tenantry_tenant_fk FOREIGN KEY (${column}) REFERENCES tenantry.tenant (id)`,
  );
  await client.query(`ALTER TABLE ${qualified} ENABLE ROW LEVEL SECURITY`);
  await client.query(`ALTER TABLE ${qualified} FORCE ROW LEVEL SECURITY`);
  await client.query(`DROP POLICY IF EXISTS tenantry_isolation ON ${qualified}`);
  await client.query(
    `CREATE POLICY tenantry_isolation ON ${qualified} FOR ALL USING (${policy}) WITH CHECK (${policy})`,
  );
  await client.query(`REVOKE ALL ON ${qualified} FROM PUBLIC`);
  await client.query('SELECT tenantry.guard_table($1::regclass)', [qualified]);
  for (const grantee of [plan.appRole, plan.role]) {
    await client.query('SELECT tenantry.grant_tenant_columns($1::regclass, $2, $3)', [
      qualified,
      table.tenantColumn,
      grantee,
    ]);
  }
  await client.query("SELECT tenantry.create_facing_view('tenantry_v', $1::regclass, $2, true, $3::name[])", [
    qualified,
    table.tenantColumn,
    [plan.appRole, plan.role],
  ]);
  await client.query(
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${pg.escapeIdentifier(table.schema)} TO ${pg.escapeIdentifier(plan.appRole)}, ${pg.escapeIdentifier(plan.role)}`,
  );
}

/** Makes the global tables readable in a tenant database as postgres_fdw foreign tables. */
export async function importShared(
  client: pg.ClientBase,
  plan: Pick<DatabasePlan, 'appRole' | 'role' | 'shared' | 'fdw'>,
): Promise<void> {
  if (plan.shared.length === 0) return;
  const { host, port, database } = urlParts(plan.fdw.url);
  await client.query('CREATE EXTENSION IF NOT EXISTS postgres_fdw');
  await client.query(
    `CREATE SERVER IF NOT EXISTS tenantry_catalog FOREIGN DATA WRAPPER postgres_fdw
     OPTIONS (host ${pg.escapeLiteral(host)}, port ${pg.escapeLiteral(port)}, dbname ${pg.escapeLiteral(database)})`,
  );
  // One mapping for everyone, with a role that can read the global tables and nothing else.
  // Tenants get no USAGE on the foreign server, so they cannot read the mapping's options.
  await client.query(
    `CREATE USER MAPPING IF NOT EXISTS FOR PUBLIC SERVER tenantry_catalog
     OPTIONS (user ${pg.escapeLiteral(plan.fdw.user)}, password ${pg.escapeLiteral(plan.fdw.password)})`,
  );
  const bySchema = new Map<string, string[]>();
  for (const s of plan.shared) bySchema.set(s.schema, [...(bySchema.get(s.schema) ?? []), s.table]);
  for (const [schema, tables] of bySchema) {
    const quoted = pg.escapeIdentifier(schema);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    const missing: string[] = [];
    for (const table of tables) {
      const found = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [
        `${quoted}.${pg.escapeIdentifier(table)}`,
      ]);
      if (!(found.rows[0] as { found: boolean }).found) missing.push(table);
    }
    if (missing.length > 0) {
      await client.query(
        `IMPORT FOREIGN SCHEMA ${quoted} LIMIT TO (${missing.map((t) => pg.escapeIdentifier(t)).join(', ')})
         FROM SERVER tenantry_catalog INTO ${quoted}`,
      );
    }
    for (const table of tables) {
      const foreign = `${quoted}.${pg.escapeIdentifier(table)}`;
      await client.query(
        `GRANT SELECT ON ${foreign} TO ${pg.escapeIdentifier(plan.appRole)}, ${pg.escapeIdentifier(plan.role)}`,
      );
      await client.query(
        "SELECT tenantry.create_facing_view('tenantry_v', $1::regclass, NULL, false, $2::name[])",
        [foreign, [plan.appRole, plan.role]],
      );
    }
  }
}

/** Drops a tenant database (ending its sessions) and its roles; missing ones are fine. */
export async function dropTenantDatabase(
  serverUrl: string,
  database: string,
  roles: string | readonly string[],
): Promise<void> {
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    for (const role of typeof roles === 'string' ? [roles] : roles) {
      await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    }
  });
}

/**
 * Creates a database tenant's per-permission role on its server and registers it in the
 * tenant's database (installing the rights there first when they are missing). Throws
 * `TENANTRY_ERR_RIGHTS_UNAVAILABLE` when that database cannot refuse DDL to read and write
 * users (its wall needs a superuser); the role is then removed again.
 */
export async function createDatabasePermissionRole(
  serverUrl: string,
  target: { tenant: string; server: string; database: string; appRole: string },
  role: MemberRoleSpec & { tenantId: number; permission: string; searchPath: string },
): Promise<void> {
  await withClient(serverUrl, (client) => createMemberRole(client, role));
  try {
    await withClient(withDatabase(serverUrl, target.database), async (client) => {
      await client.query('BEGIN');
      const wall =
        (await hasRightsWall(client)) ||
        (await installDatabaseRights(client, { appRole: target.appRole, role: role.admin }));
      if (!wall)
        throw new TenantryError('RIGHTS_UNAVAILABLE', { tenant: target.tenant, server: target.server });
      await registerDatabaseRole(client, { ...role, name: role.name, database: target.database });
      await client.query('COMMIT');
    });
  } catch (error) {
    await withClient(serverUrl, (client) =>
      client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role.name)}`),
    ).catch(() => undefined);
    throw error;
  }
}
