import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverUrl, withClient } from '../helpers/db.js';
import { columnsSeen, fleetFixture, type FleetFixture } from './helpers.js';

let f: FleetFixture;

beforeAll(async () => {
  f = await fleetFixture('fleet_template', { schema: 2, database: 1 });
  f.write(
    1,
    'invoice',
    `CREATE TABLE invoice (tenant_id integer NOT NULL, id serial, amount numeric NOT NULL DEFAULT 0,
                           PRIMARY KEY (tenant_id, id));
     ALTER TABLE customer ADD COLUMN email text;
     -- tenantry:shared
     SELECT tenantry.multi_tenant('invoice');
     -- tenantry:tenants
     CREATE INDEX invoice_amount ON invoice (amount);`,
  );
  const report = await f.tenantry.migrations.run({ dir: f.dir });
  expect(report.failures).toEqual([]);
}, 300_000);
afterAll(async () => {
  await f?.close();
});

const version = async (tenant: string) =>
  (
    await f.sql<{ version: string }>(
      'SELECT m.version FROM tenantry.tenant_migration m JOIN tenantry.tenant t ON t.id = m.tenant_id WHERE t.name = $1',
      [tenant],
    )
  )[0]?.version;

const insertInvoice = (tenant: string, identity: 'app' | 'tenant') =>
  f.tenantry.withTenant(
    tenant,
    async (db) =>
      (await db.query<{ id: number }>('INSERT INTO invoice (amount) VALUES (9.5) RETURNING id')).rows[0]!.id,
    { identity },
  );

describe('new tenants are cloned from templates kept at the current migration version', () => {
  it('existing tenants got the table a migration created and registered, secured', async () => {
    for (const tenant of ['HomeDepot', 'S01', 'D1']) {
      expect(await insertInvoice(tenant, 'tenant'), tenant).toBe(1);
      expect(await columnsSeen(f.tenantry, tenant, 'invoice'), tenant).toEqual(['id', 'amount']);
    }
    // another tenant does not see them
    expect(
      await f.tenantry.withTenant('Lowes', async (db) => (await db.query('SELECT * FROM invoice')).rowCount),
    ).toBe(0);
  });

  it('a new schema tenant is a clone of the template schema, at the current version', async () => {
    const t = await f.tenantry.tenants.create({ name: 'NewSchema', isolation: 'schema' });
    expect(await version('NewSchema')).toBe('1');
    expect(await columnsSeen(f.tenantry, 'NewSchema', 'customer')).toContain('email');
    // the tenants-only index came from the template, and its serial has a sequence of its own
    const idx = await f.sql('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [
      t.schemaName,
      'invoice_amount',
    ]);
    expect(idx).toHaveLength(1);
    expect(await insertInvoice('NewSchema', 'tenant')).toBe(1);
    expect(await insertInvoice('NewSchema', 'app')).toBe(2);
    const [dflt] = await f.sql<{ d: string }>(
      'SELECT pg_get_expr(adbin, adrelid) AS d FROM pg_attrdef WHERE adrelid = $1::regclass AND adnum = 2',
      [`${t.schemaName}.invoice`],
    );
    expect(dflt!.d).toContain(t.schemaName!);
  });

  it('a new database tenant is CREATE DATABASE … TEMPLATE of the template database, at the current version', async () => {
    const t = await f.tenantry.tenants.create({ name: 'NewDb', isolation: 'database' });
    expect(await version('NewDb')).toBe('1');
    expect(await insertInvoice('NewDb', 'tenant')).toBe(1);
    expect(await columnsSeen(f.tenantry, 'NewDb', 'customer', 'tenant')).toContain('email');
    const [tpl] = await f.sql<{ object_name: string; version: string }>(
      "SELECT object_name, version FROM tenantry.migration_template WHERE name = 'database:main'",
    );
    expect(tpl!.version).toBe('1');
    await withClient(serverUrl(), async (c) => {
      const { rows } = await c.query<{ datistemplate: boolean; datallowconn: boolean }>(
        'SELECT datistemplate, datallowconn FROM pg_database WHERE datname = $1',
        [tpl!.object_name],
      );
      expect(rows).toEqual([{ datistemplate: true, datallowconn: false }]);
      // the clone belongs to the tenant: its row, its role's privileges, nobody else may connect
      const url = new URL(serverUrl());
      url.pathname = `/${t.databaseName}`;
      const db = new pg.Client({ connectionString: url.toString() });
      await db.connect();
      try {
        const names = await db.query('SELECT id, name FROM tenantry.tenant');
        expect(names.rows).toEqual([{ id: t.id, name: 'NewDb' }]);
        const privileges = await db.query<{ ok: boolean; tpl: boolean }>(
          `SELECT has_table_privilege($1, 'public.invoice', 'INSERT') AS ok,
                  has_table_privilege($2, 'public.invoice', 'INSERT') AS tpl`,
          [t.role, tpl!.object_name],
        );
        expect(privileges.rows).toEqual([{ ok: false, tpl: false }]);
        const column = await db.query<{ ok: boolean }>(
          "SELECT has_column_privilege($1, 'public.invoice', 'amount', 'INSERT') AS ok",
          [t.role],
        );
        expect(column.rows[0]!.ok).toBe(true);
        const acl = await db.query<{ ok: boolean }>(
          "SELECT has_database_privilege('public', current_database(), 'CONNECT') AS ok",
        );
        expect(acl.rows[0]!.ok).toBe(false);
      } finally {
        await db.end();
      }
    });
  });

  it('tables registered outside migrations, and hand-made changes, still reach new tenants', async () => {
    await f.tenantry.operator.query(`
      CREATE TABLE note (tenant_id integer NOT NULL, id integer NOT NULL, body text, PRIMARY KEY (tenant_id, id));
      ALTER TABLE customer ADD COLUMN phone text;`);
    await f.tenantry.tables.multiTenant('public.note');
    for (const [name, isolation] of [
      ['LaterSchema', 'schema'],
      ['LaterDb', 'database'],
    ] as const) {
      await f.tenantry.tenants.create({ name, isolation });
      expect(await columnsSeen(f.tenantry, name, 'note'), name).toEqual(['id', 'body']);
      expect(await columnsSeen(f.tenantry, name, 'customer'), name).toContain('phone');
      expect(await insertInvoice(name, 'tenant'), name).toBe(1);
    }
  });

  it('a schema tenant whose tables were built another way is recorded at the shared tables’ version', async () => {
    await f.sql(
      `INSERT INTO tenantry.tenant (id, uuid, name, kind, isolation)
       VALUES (nextval('tenantry.regular_tenant_id'), gen_random_uuid(), 'Elsewhere', 'regular', 'schema')`,
    );
    expect(await version('Elsewhere')).toBeUndefined();
    await f.sql('CREATE SCHEMA tenantry_t_elsewhere');
    await f.sql("UPDATE tenantry.tenant SET schema_name = 'tenantry_t_elsewhere' WHERE name = 'Elsewhere'");
    expect(await version('Elsewhere')).toBe('1');
  });
});
