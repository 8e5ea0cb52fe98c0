import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnsSeen, fleetFixture, type FleetFixture } from './helpers.js';

let f: FleetFixture;

/** Columns of a tenant's query, as the tenant's own login role (identity 'tenant'). */
const seen = (tenant: string, sql: string) =>
  f.tenantry.withTenant(tenant, async (db) => (await db.query(sql)).fields.map((x) => x.name), {
    identity: 'tenant',
  });

beforeAll(async () => {
  f = await fleetFixture('fleet_views', { schema: 2, database: 1 });
  // tenant-specific views: a SELECT * one and one naming its columns, for every isolation model
  for (const tenant of ['HomeDepot', 'S01', 'D1']) {
    await f.tenantry.withTenant(
      tenant,
      async (db) => {
        await db.query("CREATE VIEW georgia AS SELECT * FROM customer WHERE state = 'GA'");
        await db.query('CREATE VIEW names AS SELECT cust_num, name FROM customer');
      },
      { identity: 'tenant' },
    );
  }
  // per-tenant columns (Phoenix) for a shared and a schema tenant
  for (const tenant of ['Lowes', 'S02']) {
    await f.tenantry.withTenant(tenant, (db) =>
      db.query("SELECT tenantry.add_tenant_column('customer', 'vip', 'boolean')"),
    );
  }
}, 300_000);
afterAll(async () => {
  await f?.close();
});

describe('after a migration, tenant-facing views, tenant views and per-tenant columns show the new shape', () => {
  it('a new column reaches tenantry_v, face views, SELECT * tenant views and per-tenant column views', async () => {
    f.write(1, 'email', 'ALTER TABLE customer ADD COLUMN email text, ADD COLUMN fax text;');
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.failures).toEqual([]);
    for (const tenant of ['HomeDepot', 'S01', 'D1']) {
      expect(await seen(tenant, 'SELECT * FROM georgia'), tenant).toEqual([
        'cust_num',
        'name',
        'state',
        'email',
        'fax',
      ]);
      expect(await seen(tenant, 'SELECT * FROM names'), tenant).toEqual(['cust_num', 'name']);
      const rows = await f.tenantry.withTenant(tenant, async (db) => {
        await db.query("UPDATE georgia SET email = 'x@example.com'");
        return (await db.query('SELECT email FROM customer')).rows;
      });
      expect(rows, tenant).toEqual([{ email: 'x@example.com' }]);
    }
    for (const tenant of ['Lowes', 'S02']) {
      expect(await columnsSeen(f.tenantry, tenant, 'customer'), tenant).toEqual([
        'cust_num',
        'name',
        'state',
        'email',
        'fax',
        'vip',
      ]);
      await f.tenantry.withTenant(tenant, (db) =>
        db.query("UPDATE customer SET vip = true, email = 'v@example.com'"),
      );
      const rows = await f.tenantry.withTenant(
        tenant,
        async (db) => (await db.query('SELECT vip, email FROM customer')).rows,
      );
      expect(rows).toEqual([{ vip: true, email: 'v@example.com' }]);
    }
  });

  it('dropping or retyping a column rebuilds the views built on it (and keeps tenant views)', async () => {
    f.write(
      2,
      'retype',
      'ALTER TABLE customer ALTER COLUMN email TYPE varchar(200); ALTER TABLE customer DROP COLUMN fax;',
    );
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.failures).toEqual([]);
    for (const tenant of ['HomeDepot', 'S01', 'D1', 'Lowes', 'S02']) {
      expect(await columnsSeen(f.tenantry, tenant, 'customer'), tenant).not.toContain('fax');
    }
    expect(await seen('HomeDepot', 'SELECT * FROM georgia')).toEqual(['cust_num', 'name', 'state', 'email']);
    // names (no dropped column) survived as it was
    for (const tenant of ['HomeDepot', 'S01', 'D1']) {
      expect(await seen(tenant, 'SELECT * FROM names'), tenant).toEqual(['cust_num', 'name']);
    }
  });

  it('a tenant view that needs a dropped column fails its tenant with a clear error; the rest migrate', async () => {
    await f.tenantry.withTenant('S01', (db) => db.query('CREATE VIEW mails AS SELECT email FROM customer'), {
      identity: 'tenant',
    });
    f.write(3, 'no_email', 'ALTER TABLE customer DROP COLUMN email;');
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.failures.map((x) => x.tenant)).toEqual(['S01']);
    expect(report.failures[0]!.error).toMatch(/email.*does not exist/);
    expect(await seen('S01', 'SELECT * FROM mails')).toEqual(['email']);
    await f.tenantry.withTenant('S01', (db) => db.query('DROP VIEW mails'), { identity: 'tenant' });
    const rerun = await f.tenantry.migrations.run({ dir: f.dir });
    expect(rerun.failures).toEqual([]);
    expect(await columnsSeen(f.tenantry, 'S01', 'customer')).toEqual(['cust_num', 'name', 'state']);
  });

  it('a new column of a global table reaches every tenant, database tenants too', async () => {
    f.write(
      4,
      'state_region',
      "-- tenantry:shared\nALTER TABLE state ADD COLUMN region text DEFAULT 'south';",
    );
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.failures).toEqual([]);
    for (const tenant of ['HomeDepot', 'S01', 'D1']) {
      const rows = await f.tenantry.withTenant(
        tenant,
        async (db) => (await db.query('SELECT code, region FROM state ORDER BY 1')).rows,
      );
      expect(rows, tenant).toEqual([
        { code: 'GA', region: 'south' },
        { code: 'NC', region: 'south' },
      ]);
    }
  });

  it('a grouped table keeps its segment columns after gaining a column', async () => {
    await f.tenantry.operator.query(
      'CREATE TABLE item (tenant_id integer NOT NULL, item_num integer NOT NULL, name text, PRIMARY KEY (tenant_id, item_num))',
    );
    await f.tenantry.tables.multiTenant('public.item');
    await f.tenantry.groups.create('Pros', { table: 'public.item', tenants: ['HomeDepot', 'Lowes'] });
    await f.tenantry.withTenant('HomeDepot', (db) =>
      db.query("INSERT INTO item (item_num, name) VALUES (1, 'saw')"),
    );
    f.write(5, 'item_price', 'ALTER TABLE item ADD COLUMN price numeric;');
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.failures).toEqual([]);
    const rows = await f.tenantry.withTenant('Lowes', async (db) => {
      await db.query('UPDATE item SET price = 12.5 WHERE item_num = 1');
      return (await db.query('SELECT * FROM item')).rows;
    });
    expect(rows).toEqual([
      { item_num: 1, name: 'saw', price: '12.5', segment_group: 'Pros', segment_tenant: expect.any(Number) },
    ]);
  });
});
