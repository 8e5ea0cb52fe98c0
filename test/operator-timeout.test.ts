import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INSTALL_LOCK } from '../src/catalog/install.js';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

// pool.queryTimeoutMs is a client-side limit for dead network paths. On the operator's pool it
// guards catalog reads; operator work that may rightly run long (a dropped tenant's rows, a
// schema tenant's clone or drop) is exempt: cut off, it would be reported as failed while
// PostgreSQL finishes it anyway.
const QUERY_TIMEOUT_MS = 1_500;
let url: string;
let tenantry: Tenantry;
const masterKey = generateMasterKey();

beforeAll(async () => {
  url = await createTestDatabase('operator_timeout');
  tenantry = await createTenantry({
    databaseUrl: url,
    masterKey,
    pool: { queryTimeoutMs: QUERY_TIMEOUT_MS },
  });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  // Every DELETE on customer takes longer than the timeout.
  await withClient(url, (client) =>
    client.query(`
      CREATE FUNCTION public.slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(${(2 * QUERY_TIMEOUT_MS) / 1000}); RETURN NULL; END $$;
      CREATE TRIGGER slow_delete AFTER DELETE ON public.customer
        FOR EACH STATEMENT EXECUTE FUNCTION public.slow_delete();`),
  );
});

afterAll(async () => {
  await tenantry?.close();
});

describe('the operator pool with pool.queryTimeoutMs', () => {
  it('still bounds a plain operator statement', async () => {
    const error: unknown = await tenantry.operator
      .query(`SELECT pg_sleep(${(2 * QUERY_TIMEOUT_MS) / 1000})`)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(Error);
    expect(String(error)).toMatch(/timeout/i);
  });

  it('lets a second instance wait for a catalog install that takes longer than the timeout', async () => {
    // another installer holding the install lock for twice the timeout
    const held = withClient(url, async (client) => {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]);
      await client.query(`SELECT pg_sleep(${(2 * QUERY_TIMEOUT_MS) / 1000})`);
      await client.query('COMMIT');
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await createTenantry({
      databaseUrl: url,
      masterKey,
      pool: { queryTimeoutMs: QUERY_TIMEOUT_MS },
    });
    try {
      expect((await second.tenants.list()).length).toBeGreaterThan(0);
    } finally {
      await second.close();
      await held;
    }
  });

  it('does not cut off dropping a tenant whose rows take longer to delete', async () => {
    for (const [name, isolation] of [
      ['SlowShared', 'shared'],
      ['SlowSchema', 'schema'],
    ] as const) {
      await tenantry.tenants.create({ name, isolation });
      await tenantry.withTenant(name, (db) =>
        db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Ada'), (2, 'Grace')"),
      );
      const deleted = await tenantry.tenants.drop(name, { force: true });
      if (isolation === 'shared') expect(deleted['public.customer']).toBe(2);
      const gone = await tenantry.tenants.show(name).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTenantryError(gone) && gone.code).toBe('TENANTRY_ERR_TENANT_NOT_FOUND');
    }
    // the other tenants are served as before
    await tenantry.tenants.create({ name: 'Kept' });
    const rows = await tenantry.withTenant('Kept', async (db) => {
      await db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Kim')");
      return (await db.query<{ name: string }>('SELECT name FROM customer')).rows;
    });
    expect(rows.map((r) => r.name)).toEqual(['Kim']);
  });
});
