import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';
import { MAX_PER_CONNECTION } from '../src/session/statement-cache.js';
import { createTestDatabase } from './helpers/db.js';

// Statements with parameters that application code runs through withTenant are prepared once per
// connection (src/session/statement-cache.ts). One pooled connection, so every tenant below
// reuses the same prepared statements.
let tenantry: Tenantry;
const TENANTS = ['HomeDepot', 'Lowes', 'Acme', 'Own', 'Later'];

async function preparedCount(tenant: string): Promise<number> {
  const { rows } = await tenantry.withTenant(tenant, (db) =>
    db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'tenantry\\_q%'",
    ),
  );
  return rows[0]!.n;
}

async function addColumn(tenant: string, column: string): Promise<void> {
  await tenantry.withTenant(
    tenant,
    (db) => db.query(`SELECT tenantry.add_tenant_column('customer', '${column}', 'text')`),
    { identity: 'tenant' },
  );
}

beforeAll(async () => {
  const url = await createTestDatabase('statement_cache');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey(), pool: { budget: 1 } });
  await tenantry.operator.query(
    'CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, cust_num))',
  );
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tenants.create({ name: 'HomeDepot' });
  await tenantry.tenants.create({ name: 'Lowes' });
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' });
  await tenantry.tenants.create({ name: 'Own', loginRole: true });
  await tenantry.tenants.create({ name: 'Later', loginRole: true });
  for (const tenant of TENANTS) {
    await tenantry.withTenant(tenant, (db) =>
      db.query('INSERT INTO customer (cust_num, name) SELECT g, $1 || g FROM generate_series(1, 20) g', [
        tenant,
      ]),
    );
  }
  // One tenant's `customer` has a column of its own: the same text has another result shape.
  await addColumn('Own', 'vip');
});
afterAll(async () => {
  await tenantry?.close();
});

describe('automatic prepared statements', () => {
  it('prepares a parameterised statement once and serves every tenant its own rows from it', async () => {
    for (let round = 0; round < 8; round++) {
      for (const tenant of TENANTS) {
        const n = 1 + ((round * 7) % 20);
        const { rows } = await tenantry.withTenant(tenant, (db) =>
          db.query<{ name: string }>('SELECT name FROM customer WHERE cust_num = $1', [n]),
        );
        expect(rows).toEqual([{ name: `${tenant}${n}` }]);
        // Another tenant's key is never found, whatever plan the statement has settled on.
        const { rows: all } = await tenantry.withTenant(tenant, (db) =>
          db.query<{ name: string }>('SELECT name FROM customer WHERE cust_num <= $1', [20]),
        );
        expect(all.map((r) => r.name).sort()).toEqual(
          Array.from({ length: 20 }, (_, i) => `${tenant}${i + 1}`).sort(),
        );
      }
    }
    expect(await preparedCount('Lowes')).toBeGreaterThanOrEqual(2);
  });

  it('follows each tenant’s own result shape, in single statements and transactions', async () => {
    for (let round = 0; round < 6; round++) {
      for (const tenant of ['Own', 'HomeDepot', 'Acme']) {
        const single = await tenantry.withTenant(tenant, (db) =>
          db.query('SELECT * FROM customer WHERE cust_num = $1', [3]),
        );
        const inTx = await tenantry.withTenant(tenant, (db) =>
          db.transaction(async (tx) => tx.query('SELECT * FROM customer WHERE cust_num = $1', [3])),
        );
        const expected = tenant === 'Own' ? ['cust_num', 'name', 'vip'] : ['cust_num', 'name'];
        expect(single.fields.map((f) => f.name)).toEqual(expected);
        expect(inTx.fields.map((f) => f.name)).toEqual(expected);
        expect(single.rows[0]).toMatchObject({ name: `${tenant}3` });
      }
    }
  });

  it('re-prepares after DDL changes the columns a prepared statement returns', async () => {
    const run = () =>
      tenantry.withTenant('Later', (db) => db.query('SELECT * FROM customer WHERE cust_num = $1', [5]));
    const runInTx = () =>
      tenantry.withTenant('Later', (db) =>
        db.transaction((tx) => tx.query('SELECT * FROM customer WHERE cust_num = $1', [5])),
      );
    expect((await run()).fields.map((f) => f.name)).toEqual(['cust_num', 'name']);
    expect((await runInTx()).fields.map((f) => f.name)).toEqual(['cust_num', 'name']);
    await addColumn('Later', 'region');
    for (const result of [await run(), await runInTx(), await run()]) {
      expect(result.fields.map((f) => f.name)).toEqual(['cust_num', 'name', 'region']);
      expect(result.rows).toEqual([{ cust_num: 5, name: 'Later5', region: null }]);
    }
  });

  it(`keeps at most ${MAX_PER_CONNECTION} statements prepared per connection`, async () => {
    for (let i = 0; i < MAX_PER_CONNECTION + 30; i++) {
      const { rows } = await tenantry.withTenant('HomeDepot', (db) =>
        db.query<{ n: number }>(`SELECT $1::int + ${i} AS n`, [1]),
      );
      expect(rows[0]?.n).toBe(1 + i);
    }
    const count = await preparedCount('HomeDepot');
    expect(count).toBeGreaterThan(MAX_PER_CONNECTION / 2);
    expect(count).toBeLessThanOrEqual(MAX_PER_CONNECTION);
  });

  it('starts afresh after a connection reset (DISCARD ALL) and keeps working', async () => {
    // set_config marks the connection as carrying session state: it is reset after use.
    await tenantry.withTenant('Lowes', (db) =>
      db.query("SELECT set_config('application_name', $1, false)", ['statement-cache']),
    );
    const { rows } = await tenantry.withTenant('Lowes', (db) =>
      db.query<{ name: string }>('SELECT name FROM customer WHERE cust_num = $1', [9]),
    );
    expect(rows).toEqual([{ name: 'Lowes9' }]);
  });
});
