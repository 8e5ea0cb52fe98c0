import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;

const count = (tenant: string) =>
  tenantry.withTenant(
    tenant,
    async (db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM customer')).rows[0]!.n,
  );

beforeAll(async () => {
  const url = await createTestDatabase('allocation');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, ten_name text,
                           PRIMARY KEY (tenant_id, cust_num));
    CREATE TABLE note (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));`);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.multiTenant('public.note');
  await tenantry.tenants.create({ name: 'HomeDepot' });
  await tenantry.tenants.create({ name: 'Lowes' });
  // A schema tenant reads its own copy: rows naming it cannot be moved into the shared table.
  await tenantry.tenants.create({ name: 'Sears', isolation: 'schema' });
  await tenantry.withTenant('HomeDepot', (db) =>
    db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Albert Hall')"),
  );
  // seed 004: data loaded before the database was multi-tenant sits in the default segment
  await tenantry.operator.query(`
    INSERT INTO customer (tenant_id, cust_num, name, ten_name) VALUES
      (0, 101, 'Candace Jones', 'HomeDepot'), (0, 102, 'Carrie Abrahm', 'homedepot'),
      (0, 201, 'Fred Smith', 'Lowes'), (0, 202, 'Joan Adlon', 'Lowes'), (0, 203, 'George Holmes', 'Lowes'),
      (0, 301, 'Mystery Buyer', 'Menards'), (0, 302, 'Nobody', NULL), (0, 401, 'Sam Shopper', 'Sears')`);
});
afterAll(async () => {
  await tenantry?.close();
});

describe('allocation and the default tenant (seed 004)', () => {
  it('the default tenant’s segments are unallocated: every access fails with TENANTRY_ERR_NOT_ALLOCATED', async () => {
    for (const sql of [
      'SELECT * FROM customer',
      'INSERT INTO note (id) VALUES (1)',
      'DELETE FROM customer',
    ]) {
      const error = await tenantry.withTenant('Default', (db) => db.query(sql)).catch((e: unknown) => e);
      expect(isTenantryError(error, 'NOT_ALLOCATED'), sql).toBe(true);
    }
  });

  it('regular tenants’ segments are allocated at creation; deallocating one refuses access, allocating restores it', async () => {
    expect(await count('HomeDepot')).toBe(1);
    await tenantry.segments.deallocate('HomeDepot', 'customer');
    const error = await count('HomeDepot').catch((e: unknown) => e);
    expect(isTenantryError(error, 'NOT_ALLOCATED')).toBe(true);
    expect((error as Error).message).toMatch(/HomeDepot in public.customer is not allocated/);
    // other tables and other tenants are unaffected
    await tenantry.withTenant('HomeDepot', (db) => db.query('INSERT INTO note (id) VALUES (1)'));
    expect(await count('Lowes')).toBe(0);
    await tenantry.segments.allocate('HomeDepot', 'customer');
    expect(await count('HomeDepot')).toBe(1);
  });

  it('migrate-default moves rows to the tenant they name, in batches, resumably, and lists the unknown', async () => {
    const result = await tenantry.segments.migrateDefault('customer', 'ten_name', { batchSize: 2 });
    expect(result.moved).toEqual({ HomeDepot: 2, Lowes: 3 });
    expect(result.batches).toBeGreaterThanOrEqual(3);
    expect(result.unknown).toEqual([
      { value: '(null)', rows: 1 },
      { value: 'Menards', rows: 1 },
      { value: 'Sears', rows: 1 },
    ]);
    expect(await count('HomeDepot')).toBe(3);
    expect(await count('Lowes')).toBe(3);
    const again = await tenantry.segments.migrateDefault('customer', 'ten_name');
    expect(again.moved).toEqual({});
    expect(again.unknown).toHaveLength(3);
  });

  it('once allocated, the default tenant sees what is left in its segment', async () => {
    await tenantry.segments.allocate('Default', 'customer');
    const names = await tenantry.withTenant('Default', async (db) =>
      (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
    );
    expect(names).toEqual(['Mystery Buyer', 'Nobody', 'Sam Shopper']);
  });

  it('rejects unknown tables, columns and tenants', async () => {
    expect(
      isTenantryError(
        await tenantry.segments.allocate('HomeDepot', 'nope').catch((e: unknown) => e),
        'TABLE_SHAPE',
      ),
    ).toBe(true);
    expect(
      isTenantryError(
        await tenantry.segments.allocate('Nobody', 'customer').catch((e: unknown) => e),
        'TENANT_NOT_FOUND',
      ),
    ).toBe(true);
    expect(
      isTenantryError(
        await tenantry.segments.migrateDefault('customer', 'no_col').catch((e: unknown) => e),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
  });
});
