import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;
const placements = [
  { name: 'HomeDepot', isolation: 'shared' },
  { name: 'Lowes', isolation: 'shared' },
  { name: 'Acme', isolation: 'schema' },
  { name: 'Globex', isolation: 'database' },
] as const;

beforeAll(async () => {
  const url = await createTestDatabase('sequences');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey(), pool: { budget: 40 } });
  await tenantry.sequences.create('custnum');
  await tenantry.sequences.create('ordernum', { shared: true, start: 1000 });
  await tenantry.operator.query(`
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num bigint NOT NULL DEFAULT tenantry.next('custnum'),
                           name text NOT NULL, PRIMARY KEY (tenant_id, cust_num))`);
  await tenantry.tables.multiTenant('public.customer');
  for (const p of placements)
    await tenantry.tenants.create({ name: p.name, isolation: p.isolation, loginRole: true });
});
afterAll(async () => {
  await tenantry?.close();
});

describe('sequences (seed 004)', () => {
  it('a multi-tenant sequence counts from 1 in every tenant, as a column default', async () => {
    for (const p of placements) {
      const nums = await tenantry.withTenant(p.name, async (db) => {
        await db.query("INSERT INTO customer (name) VALUES ('first'), ('second')");
        return (await db.query<{ cust_num: string }>('SELECT cust_num FROM customer ORDER BY 1')).rows.map(
          (r) => r.cust_num,
        );
      });
      expect(nums, p.name).toEqual(['1', '2']);
    }
  });

  it('200 concurrent inserts per tenant get distinct numbers, without deadlocks', async () => {
    await Promise.all(
      placements.map((p) =>
        Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            tenantry.withTenant(p.name, (db) =>
              db.query('INSERT INTO customer (name) VALUES ($1)', [`c${i}`]),
            ),
          ),
        ),
      ),
    );
    for (const p of placements) {
      const stats = await tenantry.withTenant(
        p.name,
        async (db) =>
          (
            await db.query<{ n: string; d: string; max: string }>(
              'SELECT count(*) AS n, count(DISTINCT cust_num) AS d, max(cust_num) AS max FROM customer',
            )
          ).rows[0],
      );
      expect(stats, p.name).toEqual({ n: '202', d: '202', max: '202' });
    }
  });

  it('a shared sequence numbers across tenants', async () => {
    const values = await Promise.all(
      ['HomeDepot', 'Lowes', 'Acme', 'HomeDepot', 'Lowes', 'Acme'].map((t) =>
        tenantry.withTenant(
          t,
          async (db) => (await db.query<{ v: string }>("SELECT tenantry.next('ordernum') AS v")).rows[0]!.v,
        ),
      ),
    );
    expect(new Set(values).size).toBe(6);
    expect(values.map(Number).every((v) => v >= 1000 && v < 1006)).toBe(true);
  });

  it('a tenant cannot learn or advance another tenant’s values', async () => {
    const read = await tenantry
      .withTenant('Lowes', (db) => db.query('SELECT * FROM tenantry.sequence_value'), { identity: 'tenant' })
      .catch((e: unknown) => e);
    expect((read as { code?: string }).code).toBe('42501');
    const before = await tenantry.withTenant(
      'HomeDepot',
      async (db) => (await db.query<{ v: string }>("SELECT tenantry.next('custnum') AS v")).rows[0]!.v,
    );
    await tenantry.withTenant('Lowes', (db) => db.query("SELECT tenantry.next('custnum')"), {
      identity: 'tenant',
    });
    const after = await tenantry.withTenant(
      'HomeDepot',
      async (db) => (await db.query<{ v: string }>("SELECT tenantry.next('custnum') AS v")).rows[0]!.v,
    );
    expect(Number(after)).toBe(Number(before) + 1);
  });

  it('unknown sequences, bad names and no tenant give clear errors', async () => {
    const unknown = await tenantry
      .withTenant('HomeDepot', (db) => db.query("SELECT tenantry.next('nope')"))
      .catch((e: unknown) => e);
    expect(isTenantryError(unknown, 'SEQUENCE_NOT_FOUND')).toBe(true);
    expect(
      isTenantryError(
        await tenantry.sequences.create('Bad-Name').catch((e: unknown) => e),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
    expect(
      isTenantryError(
        await tenantry.sequences.create('custnum').catch((e: unknown) => e),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
    const noTenant = await tenantry.operator
      .query("SELECT tenantry.next('custnum')")
      .catch((e: unknown) => e);
    expect((noTenant as Error).message).toMatch(/TENANTRY_ERR_NO_TENANT/);
    expect((await tenantry.sequences.list()).map((s) => `${s.name}:${s.kind}`)).toEqual([
      'custnum:multi_tenant',
      'ordernum:shared',
    ]);
  });
});
