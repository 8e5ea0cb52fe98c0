import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { expandIncludes } from '../catalog/index.js';

const sql = (name: string) =>
  expandIncludes(readFileSync(fileURLToPath(new URL(`../sql/dataplane/${name}`, import.meta.url)), 'utf8'));
const objectsSql = sql('tenant-objects.sql');
const objectsWallSql = sql('tenant-objects-wall.sql');

/**
 * The version of the idempotent part of a database tenant's data plane (rights, wall, own
 * objects): a hash of its SQL, stored in the tenant's database as `tenantry.data_plane`. A
 * database whose stamp differs — created by an older tenantry — is brought up to date by a sync.
 */
export const DATA_PLANE_VERSION = createHash('sha256')
  .update(
    ['tenant-rights.sql', 'tenant-wall.sql', 'tenant-objects.sql', 'tenant-objects-wall.sql']
      .map((name) => sql(name))
      .join('\0'),
  )
  .digest('hex')
  .slice(0, 16);

/** What a tenant database's own objects need from the catalog. */
export interface TenantObjectsPlan {
  /** The application role. */
  readonly appRole: string;
  /** The tenant's own (admin) role. */
  readonly role: string;
  /** The registered multi-tenant tables (copied into the database). */
  readonly tables: readonly { schema: string; table: string; tenantColumn: string }[];
  /** The registered global tables (foreign tables there). */
  readonly shared: readonly { schema: string; table: string }[];
  /** The catalog's `tenantry.setting` rows (e.g. max_tenant_indexes_per_table). */
  readonly settings?: readonly { name: string; value: string }[];
}

/**
 * Installs, in a database tenant's own database, what its own objects need — tenant-specific
 * views under Phoenix's rules, per-tenant columns (`tenantry.add_tenant_column`), tenant indexes
 * (`tenantry.create_tenant_index`) and the guards on tenant code, with the same functions as the
 * catalog — and copies the table registry and settings there. The event triggers need a
 * superuser `client` (as the rights' wall does). Idempotent: run at creation and by every sync,
 * after the tables were copied; stamps the database with {@link DATA_PLANE_VERSION}.
 */
export async function installTenantObjects(client: pg.ClientBase, plan: TenantObjectsPlan): Promise<void> {
  const { rows } = await client.query<{ me: string; su: boolean }>(
    'SELECT current_user AS me, rolsuper AS su FROM pg_roles WHERE rolname = current_user',
  );
  const values: Record<string, string> = {
    app: pg.escapeIdentifier(plan.appRole),
    role: pg.escapeIdentifier(plan.role),
    app_name: plan.appRole.replace(/'/g, "''"),
    // tenantry's own functions here run as whoever installs them
    owner_name: (rows[0]?.me ?? '').replace(/'/g, "''"),
  };
  const render = (text: string) =>
    text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => {
      // (an include that gained a catalog placeholder must not reach a tenant database as is)
      if (values[key] === undefined) throw new Error(`tenant-objects.sql: no value for ${whole}`);
      return values[key];
    });
  await client.query(render(objectsSql));
  if (rows[0]?.su) await client.query(render(objectsWallSql));
  const registry = [
    ...plan.tables.map((t) => [t.schema, t.table, 'multi_tenant', t.tenantColumn]),
    ...plan.shared.map((t) => [t.schema, t.table, 'shared', null]),
  ];
  if (registry.length > 0) {
    await client.query(
      `INSERT INTO tenantry.registered_table (schema_name, table_name, kind, tenant_column)
       SELECT * FROM unnest($1::name[], $2::name[], $3::text[], $4::name[])
       ON CONFLICT (schema_name, table_name) DO UPDATE SET kind = EXCLUDED.kind, tenant_column = EXCLUDED.tenant_column`,
      [0, 1, 2, 3].map((i) => registry.map((row) => row[i])),
    );
  }
  for (const setting of plan.settings ?? []) {
    await client.query(
      `INSERT INTO tenantry.setting (name, value) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [setting.name, setting.value],
    );
  }
  await client.query('SELECT tenantry.regrant_tenant_columns()');
  await client.query(
    `INSERT INTO tenantry.data_plane (only_row, version) VALUES (true, $1)
     ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version`,
    [DATA_PLANE_VERSION],
  );
}

/** The data-plane version the database `client` is connected to was last synced to, if any. */
export async function dataPlaneVersion(client: pg.ClientBase): Promise<string | undefined> {
  const { rows } = await client.query<{ found: boolean }>(
    "SELECT to_regclass('tenantry.data_plane') IS NOT NULL AS found",
  );
  if (!rows[0]?.found) return undefined;
  const stamp = await client.query<{ version: string }>('SELECT version FROM tenantry.data_plane');
  return stamp.rows[0]?.version;
}
