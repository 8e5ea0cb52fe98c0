import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, type Tenantry } from '../src/index.js';
import { storeFixture } from './helpers/fixtures.js';

let tenantry: Tenantry;
let single: Tenantry;

beforeAll(async () => {
  const fixture = await storeFixture('reset');
  tenantry = fixture.tenantry;
  // one connection: every statement below runs on the same backend
  single = await createTenantry({ databaseUrl: fixture.url, pool: { budget: 1, perTenantMax: 1 } });
});
afterAll(async () => {
  await single?.close();
  await tenantry?.close();
});

const pidOf = (tenant: string) =>
  single.withTenant(
    tenant,
    async (db) => (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid,
  );

/** Runs `dirty` as HomeDepot, then `probe` as Lowes on the same backend, and returns the probe's first row. */
async function afterDirty(dirty: string, probe: string): Promise<Record<string, unknown>> {
  const before = await pidOf('HomeDepot');
  await single.withTenant('HomeDepot', (db) => db.query(dirty));
  const row = await single.withTenant('Lowes', async (db) => {
    const { rows } = await db.query(`SELECT pg_backend_pid() AS pid, (${probe}) AS probe`);
    return rows[0]!;
  });
  expect(row.pid, 'same backend').toBe(before);
  return row;
}

describe('nothing a tenant leaves on a connection reaches the next tenant', () => {
  it('an open transaction is rolled back', async () => {
    await single.withTenant('HomeDepot', (db) =>
      db.query("BEGIN; INSERT INTO customer (cust_num, name) VALUES (90, 'Uncommitted')"),
    );
    const row = await single.withTenant('HomeDepot', async (db) => {
      const { rows } = await db.query("SELECT count(*)::int AS n FROM customer WHERE name = 'Uncommitted'");
      return rows[0]!;
    });
    expect(row.n).toBe(0);
  });

  it('session settings are reset', async () => {
    const row = await afterDirty("SET statement_timeout = '123s'", "current_setting('statement_timeout')");
    expect(row.probe).toBe('0');
  });

  it('search_path is reset (the next tenant sees its own tenant-facing path)', async () => {
    const row = await afterDirty('SET search_path = pg_catalog', "current_setting('search_path')");
    const lowes = await single.resolveTenant('Lowes');
    expect(row.probe).toBe(`tenantry_f_${lowes.uuid.replace(/-/g, '')}, tenantry_v, pg_temp`);
    const session = await single.withTenant('HomeDepot', async (db) => {
      await db.query('SET search_path = pg_catalog');
      return (await db.query<{ p: string }>("SELECT current_setting('search_path') AS p")).rows[0]!.p;
    });
    expect(session).toMatch(/^tenantry_f_[0-9a-f]{32}, tenantry_v, pg_temp$/);
  });

  it('temporary tables are dropped', async () => {
    const row = await afterDirty(
      "CREATE TEMP TABLE secrets AS SELECT 'HomeDepot secret' AS s",
      "SELECT count(*)::int FROM pg_class WHERE relname = 'secrets' AND relpersistence = 't'",
    );
    expect(row.probe).toBe(0);
  });

  it('prepared statements are deallocated', async () => {
    const row = await afterDirty(
      'PREPARE leak AS SELECT name FROM customer',
      // tenantry's own statements (tenantry_…) are prepared on every connection it uses
      "SELECT count(*)::int FROM pg_prepared_statements WHERE name NOT LIKE 'tenantry\\_%'",
    );
    expect(row.probe).toBe(0);
  });

  it('advisory locks are released', async () => {
    const row = await afterDirty(
      'SELECT pg_advisory_lock(42)',
      "SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    );
    expect(row.probe).toBe(0);
  });

  it('LISTEN registrations are removed', async () => {
    const row = await afterDirty(
      'LISTEN homedepot_events',
      'SELECT count(*)::int FROM pg_listening_channels()',
    );
    expect(row.probe).toBe(0);
  });

  it('a named prepared statement of the library is re-prepared after a reset', async () => {
    await single.withTenant('HomeDepot', (db) =>
      db.query({ name: 'by_num', text: 'SELECT name FROM customer WHERE cust_num = $1', values: [1] }),
    );
    await single.withTenant('HomeDepot', (db) => db.query('SET work_mem = 8192'));
    const { rows } = await single.withTenant('Lowes', (db) =>
      db.query<{ name: string }>({
        name: 'by_num',
        text: 'SELECT name FROM customer WHERE cust_num = $1',
        values: [1],
      }),
    );
    expect(rows).toEqual([{ name: 'Fred Smith' }]);
  });
});
