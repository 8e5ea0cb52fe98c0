import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';

let tenantry: Tenantry;
let url: string;

beforeAll(async () => {
  url = await createTestDatabase('tenant_columns');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, cust_num))`);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tenants.create({ name: 'HomeDepot', loginRole: true });
  await tenantry.tenants.create({ name: 'Lowes', loginRole: true });
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' });
  for (const tenant of ['HomeDepot', 'Lowes', 'Acme']) {
    await tenantry.withTenant(tenant, (db) =>
      db.query('INSERT INTO customer (cust_num, name) SELECT g, $1 || g FROM generate_series(1, 2000) g', [
        tenant,
      ]),
    );
  }
});
afterAll(async () => {
  await tenantry?.close();
});

describe('per-tenant extra columns and indexes (Phoenix)', () => {
  it.each(['HomeDepot', 'Acme'])(
    '%s adds a typed column that appears only in its own view',
    async (tenant) => {
      await tenantry.withTenant(
        tenant,
        async (db) => {
          await db.query("SELECT tenantry.add_tenant_column('customer', 'loyalty', 'integer')");
          await db.query("INSERT INTO customer (cust_num, name, loyalty) VALUES (9001, 'Vip', 42)");
          await db.query('UPDATE customer SET loyalty = 7 WHERE cust_num = 1');
          const { rows, fields } = await db.query<{ loyalty: number | null }>(
            'SELECT * FROM customer WHERE cust_num IN (1, 2, 9001) ORDER BY cust_num',
          );
          expect(fields.map((f) => f.name)).toEqual(['cust_num', 'name', 'loyalty']);
          expect(rows.map((r) => r.loyalty)).toEqual([7, null, 42]);
          const wrong = await db
            .query("UPDATE customer SET loyalty = 'many' WHERE cust_num = 1")
            .catch((e: unknown) => e);
          expect((wrong as { code?: string }).code).toBe('22P02');
          expect((await db.query('DELETE FROM customer WHERE cust_num = 9001')).rowCount).toBe(1);
        },
        { identity: 'tenant' },
      );
    },
  );

  it('other tenants do not see the column or its values, and the base table does not grow a column per tenant', async () => {
    const fields = await tenantry.withTenant('Lowes', async (db) =>
      (await db.query('SELECT * FROM customer LIMIT 1')).fields.map((f) => f.name),
    );
    expect(fields).toEqual(['cust_num', 'name']);
    const error = await tenantry
      .withTenant('Lowes', (db) => db.query('SELECT loyalty FROM customer'))
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('42703');
    await tenantry.withTenant('Lowes', (db) =>
      db.query("SELECT tenantry.add_tenant_column('customer', 'loyalty', 'text')"),
    );
    await tenantry.withTenant('Lowes', (db) =>
      db.query("UPDATE customer SET loyalty = 'gold' WHERE cust_num = 1"),
    );
    const home = await tenantry.withTenant(
      'HomeDepot',
      async (db) =>
        (await db.query<{ loyalty: number }>('SELECT loyalty FROM customer WHERE cust_num = 1')).rows[0]!
          .loyalty,
    );
    expect(home).toBe(7);
    await withClient(url, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customer'",
      );
      expect(rows[0]!.n).toBe(4); // tenant_id, cust_num, name, tenantry_ext
    });
  });

  it('a tenant index serves the tenant’s queries on its view (EXPLAIN uses it)', async () => {
    const plan = await tenantry.withTenant('HomeDepot', async (db) => {
      const name = (
        await db.query<{ n: string }>(
          "SELECT tenantry.create_tenant_index('customer', ARRAY['loyalty']) AS n",
        )
      ).rows[0]!.n;
      expect(name).toMatch(/^tenantry_ix_/);
      return db.transaction(async (tx) => {
        await tx.query('ANALYZE customer').catch(() => undefined);
        await tx.query('SET LOCAL enable_seqscan = off');
        const { rows } = await tx.query<{ 'QUERY PLAN': string }>(
          'EXPLAIN SELECT name FROM customer WHERE loyalty = 7',
        );
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    });
    expect(plan).toMatch(/Index.*tenantry_ix_/);
  });

  it('a schema tenant created later copies none of the other tenants’ indexes (they name tenant ids)', async () => {
    // (after HomeDepot's index of the test above)
    const later = await tenantry.tenants.create({ name: 'Initech', isolation: 'schema' });
    const { rows } = await tenantry.operator.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname LIKE 'tenantry\\_ix\\_%'`,
      [later.schemaName],
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('bad input and non-tenant sessions get clear errors', async () => {
    const type = await tenantry
      .withTenant('HomeDepot', (db) =>
        db.query("SELECT tenantry.add_tenant_column('customer', 'x', 'nosuchtype')"),
      )
      .catch((e: unknown) => e);
    expect(isTenantryError(type, 'INVALID_ARGUMENT')).toBe(true);
    const dup = await tenantry
      .withTenant('HomeDepot', (db) =>
        db.query("SELECT tenantry.add_tenant_column('customer', 'name', 'text')"),
      )
      .catch((e: unknown) => e);
    expect(isTenantryError(dup, 'INVALID_ARGUMENT')).toBe(true);
    const table = await tenantry
      .withTenant('HomeDepot', (db) => db.query("SELECT tenantry.add_tenant_column('nope', 'x', 'text')"))
      .catch((e: unknown) => e);
    expect(isTenantryError(table, 'TABLE_SHAPE')).toBe(true);
    const operator = await tenantry.operator
      .query("SELECT tenantry.add_tenant_column('customer', 'x', 'text')")
      .catch((e: unknown) => e);
    expect((operator as Error).message).toMatch(/TENANTRY_ERR_TENANT_VIEW/);
  });
});
