import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantryPgPool } from '../../src/index.js';
import { demoDatabase, type DemoDatabase } from './demo.js';
import { alternating, expectAllReleased, expectIsolatedReads, ownersOf } from './expect.js';

/** Existing pg-style code: it needs nothing but `query`. */
interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

async function customerNames(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>('SELECT name FROM customer ORDER BY name');
  return rows.map((row) => row.name);
}

async function addCustomer(db: Queryable, name: string): Promise<void> {
  await db.query('INSERT INTO customer (name) VALUES ($1)', [name]);
}

interface Backend {
  pid: number;
  xid: string;
}
const BACKEND = 'SELECT pg_backend_pid() AS pid, txid_current()::text AS xid';

let demo: DemoDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  demo = await demoDatabase('node_postgres');
  pool = tenantryPgPool(demo.tenantry);
});
afterAll(async () => demo.tenantry.close());

describe('pg-style code on the tenant handle', () => {
  it('runs unchanged on tenantry.db() for two tenants at once', async () => {
    await expectIsolatedReads(demo.tenantry, () => customerNames(demo.tenantry.db()));
  });

  it("writes through the handle land in the context's tenant", async () => {
    await Promise.all(
      alternating(10).map((tenant, i) =>
        demo.tenantry.withTenant(tenant, (db) => addCustomer(i % 2 ? db : demo.tenantry.db(), `handle-${i}`)),
      ),
    );
    for (const [i, tenant] of alternating(10).entries()) {
      expect(await ownersOf(demo.tenantry, `handle-${i}`)).toEqual([tenant]);
    }
    await demo.tenantry.operator.query("DELETE FROM customer WHERE name LIKE 'handle-%'");
  });
});

describe('tenantryPgPool', () => {
  it('is a pg.Pool that serves every tenant, each seeing only its rows', async () => {
    expect(pool).toBeInstanceOf(pg.Pool);
    await expectIsolatedReads(demo.tenantry, () => customerNames(pool));
    await expectIsolatedReads(demo.tenantry, async () => {
      const client = await pool.connect();
      try {
        return await customerNames(client);
      } finally {
        client.release();
      }
    });
    await expectAllReleased(demo.tenantry);
  });

  it('keeps BEGIN … COMMIT on one backend in one transaction, and ROLLBACK undoes it', async () => {
    const runs = await Promise.all(
      alternating(10).map((tenant, i) =>
        demo.tenantry.withTenant(tenant, async () => {
          const client = await pool.connect();
          try {
            await client.query('BEGIN');
            const first = (await client.query<Backend>(BACKEND)).rows[0];
            await addCustomer(client, `pool-${i}`);
            const second = (await client.query<Backend>(BACKEND)).rows[0];
            await client.query(i % 4 < 2 ? 'COMMIT' : 'ROLLBACK');
            return [first, second];
          } finally {
            client.release();
          }
        }),
      ),
    );
    for (const [first, second] of runs) expect(first).toEqual(second);
    for (const [i, tenant] of alternating(10).entries()) {
      expect(await ownersOf(demo.tenantry, `pool-${i}`)).toEqual(i % 4 < 2 ? [tenant] : []);
    }
    await demo.tenantry.operator.query("DELETE FROM customer WHERE name LIKE 'pool-%'");
    await expectAllReleased(demo.tenantry);
  });

  it('acts for the tenant in context at checkout; release() rolls back what was left open', async () => {
    const client = await demo.tenantry.withTenant('Lowes', () => pool.connect());
    expect(await customerNames(client)).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
    await client.query('START TRANSACTION READ WRITE');
    await addCustomer(client, 'pool-left-open');
    client.release();
    await expectAllReleased(demo.tenantry);
    expect(await ownersOf(demo.tenantry, 'pool-left-open')).toEqual([]);
  });

  it('reads transaction modes from BEGIN, refusing what it cannot give', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY');
        await expect(addCustomer(client, 'pool-read-only')).rejects.toMatchObject({ code: '25006' });
        await client.query('ROLLBACK');
        await expect(client.query('BEGIN ISOLATION LEVEL SERIALIZABLE')).rejects.toMatchObject({
          code: 'TENANTRY_ERR_INVALID_ARGUMENT',
        });
        await expect(client.query('BEGIN WHATEVER')).rejects.toMatchObject({
          code: 'TENANTRY_ERR_INVALID_ARGUMENT',
        });
        expect((await client.query('COMMIT')).command).toBe('COMMIT');
      } finally {
        client.release();
      }
    });
    await expectAllReleased(demo.tenantry);
  });

  it('takes query configs (rowMode, named statements) and callbacks, like pg', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      const config = {
        name: 'first-customer',
        text: 'SELECT name FROM customer WHERE cust_num = $1',
        rowMode: 'array' as const,
      };
      expect((await pool.query(config, [1])).rows).toEqual([['Albert Hall']]);
      expect((await pool.query(config, [2])).rows).toEqual([['Candace Jones']]);
      const viaCallback = await new Promise((resolve, reject) =>
        pool.query('SELECT count(*)::int AS n FROM customer', (error, result) =>
          error ? reject(error) : resolve(result.rows),
        ),
      );
      expect(viaCallback).toEqual([{ n: 3 }]);
      const viaConnect = await new Promise((resolve, reject) =>
        pool.connect((error, client, done) => {
          if (error || !client) return reject(error ?? new Error('no client'));
          client
            .query('SELECT 1 AS one')
            .then((result) => resolve(result.rows), reject)
            .finally(() => done());
        }),
      );
      expect(viaConnect).toEqual([{ one: 1 }]);
    });
  });

  it('refuses submittables, use outside a tenant context, and use after end()', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      // pg hands a submittable back at once; tenantry refuses it at once.
      expect(() => pool.query(new pg.Query('SELECT 1'))).toThrow(
        expect.objectContaining({ code: 'TENANTRY_ERR_INVALID_ARGUMENT' }),
      );
    });
    await expect(pool.query('SELECT 1')).rejects.toMatchObject({ code: 'TENANTRY_ERR_NO_TENANT' });
    await expect(pool.connect()).rejects.toMatchObject({ code: 'TENANTRY_ERR_NO_TENANT' });
    const ended = tenantryPgPool(demo.tenantry);
    await ended.end();
    await expect(demo.tenantry.withTenant('HomeDepot', () => ended.query('SELECT 1'))).rejects.toMatchObject({
      code: 'TENANTRY_ERR_INVALID_ARGUMENT',
    });
  });
});
