import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTenantry, generateMasterKey, type Tenantry } from '../../src/index.js';
import { createTestDatabase, withClient } from '../helpers/db.js';
import { createStoreTables } from '../helpers/fixtures.js';

/** A database with the store tables, shared, schema and database tenants, and a migrations dir. */
export interface FleetFixture {
  readonly url: string;
  readonly tenantry: Tenantry;
  /** The migrations directory (empty at first). */
  readonly dir: string;
  /** Names of the schema tenants, in creation order. */
  readonly schemaTenants: readonly string[];
  /** Writes migration file `<version>_<name>.sql`. */
  write(version: number, name: string, sql: string): void;
  /** Runs SQL as the superuser on the catalog database. */
  sql<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>;
  close(): Promise<void>;
}

/** Runs `fn` over `items`, `limit` at a time. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Sets up HomeDepot and Lowes (shared, with login roles), `schema` schema tenants S01…
 * and `database` database tenants D1…, each with one customer row.
 */
export async function fleetFixture(
  label: string,
  counts: { schema?: number; database?: number } = {},
): Promise<FleetFixture> {
  const url = await createTestDatabase(label);
  const tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  const shared = ['HomeDepot', 'Lowes'];
  for (const name of shared) await tenantry.tenants.create({ name, loginRole: true });
  const schemaTenants = Array.from(
    { length: counts.schema ?? 0 },
    (_, i) => `S${String(i + 1).padStart(2, '0')}`,
  );
  await eachLimited(schemaTenants, 4, async (name) => {
    await tenantry.tenants.create({ name, isolation: 'schema' });
  });
  const databaseTenants = Array.from({ length: counts.database ?? 0 }, (_, i) => `D${i + 1}`);
  for (const name of databaseTenants) await tenantry.tenants.create({ name, isolation: 'database' });
  await eachLimited([...shared, ...schemaTenants, ...databaseTenants], 4, async (name) => {
    await tenantry.withTenant(name, (db) =>
      db.query("INSERT INTO customer (cust_num, name, state) VALUES (1, $1, 'GA')", [`${name} customer`]),
    );
  });
  const dir = mkdtempSync(join(tmpdir(), `tenantry-${label}-`));
  return {
    url,
    tenantry,
    dir,
    schemaTenants,
    write: (version, name, sql) =>
      writeFileSync(join(dir, `${String(version).padStart(4, '0')}_${name}.sql`), sql),
    sql: <R>(text: string, values?: unknown[]) =>
      withClient(url, async (c) => (await c.query(text, values)).rows as R[]),
    close: async () => {
      await tenantry.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The column names `tenant` sees in `table` through its session (library withTenant). */
export async function columnsSeen(
  tenantry: Tenantry,
  tenant: string,
  table: string,
  identity: 'app' | 'tenant' = 'app',
): Promise<string[]> {
  return tenantry.withTenant(
    tenant,
    async (db) => (await db.query(`SELECT * FROM ${table} LIMIT 0`)).fields.map((f) => f.name),
    { identity },
  );
}
