import { asc, like, sql } from 'drizzle-orm';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { bigint, pgTable, text } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantryPgPool } from '../../src/index.js';
import { demoDatabase, type DemoDatabase } from './demo.js';
import { alternating, expectAllReleased, expectIsolatedReads, ownersOf } from './expect.js';

const customer = pgTable('customer', {
  custNum: bigint('cust_num', { mode: 'number' })
    .primaryKey()
    .default(sql`tenantry.next('custnum')`),
  name: text('name').notNull(),
  city: text('city'),
  state: text('state'),
});

interface Backend extends Record<string, unknown> {
  pid: number;
  xid: string;
}
const backendSql = sql`SELECT pg_backend_pid() AS pid, txid_current()::text AS xid`;

let demo: DemoDatabase;
let db: NodePgDatabase;

beforeAll(async () => {
  demo = await demoDatabase('drizzle');
  db = drizzle(tenantryPgPool(demo.tenantry));
});
afterAll(async () => demo.tenantry.close());

const names = async (): Promise<string[]> =>
  (await db.select({ name: customer.name }).from(customer).orderBy(asc(customer.name))).map(
    (row) => row.name,
  );

describe('drizzle over tenantryPgPool', () => {
  it('one drizzle database serves two tenants at once, each seeing only its rows', async () => {
    await expectIsolatedReads(demo.tenantry, names);
    await expectAllReleased(demo.tenantry);
  });

  it('writes land in the tenant in context, in and out of transactions', async () => {
    await Promise.all(
      alternating(20).map((tenant, i) =>
        demo.tenantry.withTenant(tenant, async () => {
          const name = `drizzle-write-${i}`;
          if (i % 4 < 2) await db.insert(customer).values({ name });
          else await db.transaction(async (tx) => tx.insert(customer).values({ name }));
        }),
      ),
    );
    for (const [i, tenant] of alternating(20).entries()) {
      expect(await ownersOf(demo.tenantry, `drizzle-write-${i}`)).toEqual([tenant]);
    }
    await demo.tenantry.operator.query("DELETE FROM customer WHERE name LIKE 'drizzle-write-%'");
  });

  it("runs a transaction's statements on one backend, in one transaction, while others run", async () => {
    const runs = await Promise.all(
      alternating(10).map((tenant) =>
        demo.tenantry.withTenant(tenant, () =>
          db.transaction(async (tx) => {
            const seen: Backend[] = [];
            for (let i = 0; i < 3; i++) {
              seen.push((await tx.execute<Backend>(backendSql)).rows[0]!);
              await tx.select().from(customer);
            }
            return seen;
          }),
        ),
      ),
    );
    for (const seen of runs) expect(new Set(seen.map((b) => `${b.pid}/${b.xid}`)).size).toBe(1);
    await expectAllReleased(demo.tenantry);
  });

  it('rolls back on error, and nested transactions are savepoints', async () => {
    await demo.tenantry.withTenant('Lowes', async () => {
      await expect(
        db.transaction(async (tx) => {
          await tx.insert(customer).values({ name: 'drizzle-rolled-back' });
          tx.rollback();
        }),
      ).rejects.toThrow();
      await db.transaction(async (tx) => {
        await tx.insert(customer).values({ name: 'drizzle-outer' });
        await expect(
          tx.transaction(async (inner) => {
            await inner.insert(customer).values({ name: 'drizzle-inner' });
            throw new Error('undo the inner one');
          }),
        ).rejects.toThrow('undo the inner one');
      });
    });
    expect(await ownersOf(demo.tenantry, 'drizzle-rolled-back')).toEqual([]);
    expect(await ownersOf(demo.tenantry, 'drizzle-outer')).toEqual(['Lowes']);
    expect(await ownersOf(demo.tenantry, 'drizzle-inner')).toEqual([]);
    await expectAllReleased(demo.tenantry);
  });

  it("joins tenantry's own transaction", async () => {
    await demo.tenantry.withTenant('HomeDepot', (tenantDb) =>
      tenantDb.transaction(async (tx) => {
        const outer = (await tx.query<Backend>('SELECT pg_backend_pid() AS pid, txid_current()::text AS xid'))
          .rows[0];
        expect((await db.execute<Backend>(backendSql)).rows[0]).toEqual(outer);
        expect(
          await db.transaction(async (inner) => (await inner.execute<Backend>(backendSql)).rows[0]),
        ).toEqual(outer);
      }),
    );
  });

  it('accepts the isolation level in effect, refuses another, and honours read only', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      await expect(
        db.transaction(async (tx) => (await tx.execute(sql`SHOW transaction_isolation`)).rows[0], {
          isolationLevel: 'read committed',
        }),
      ).resolves.toEqual({ transaction_isolation: 'read committed' });
      // drizzle wraps what its BEGIN met in a DrizzleQueryError.
      const refused = { cause: { code: 'TENANTRY_ERR_INVALID_ARGUMENT' } };
      await expect(db.transaction(() => names(), { isolationLevel: 'serializable' })).rejects.toMatchObject(
        refused,
      );
      await expect(db.transaction(() => names(), { deferrable: true })).rejects.toMatchObject(refused);
      await expect(
        db.transaction(async (tx) => tx.insert(customer).values({ name: 'drizzle-read-only' }), {
          accessMode: 'read only',
        }),
      ).rejects.toMatchObject({ cause: { code: '25006' } });
    });
    expect(await ownersOf(demo.tenantry, 'drizzle-read-only')).toEqual([]);
    await expectAllReleased(demo.tenantry);
  });

  it('passes rowMode and type parsers through (bigint as number, dates as text)', async () => {
    const rows = await demo.tenantry.withTenant('HomeDepot', async () =>
      db
        .select({ custNum: customer.custNum, today: sql<string>`current_date` })
        .from(customer)
        .where(like(customer.name, 'Albert%')),
    );
    expect(rows).toEqual([{ custNum: 1, today: expect.stringMatching(/^\d{4}-\d\d-\d\d$/) }]);
  });

  // KNOWN ISSUE in src/tenantry.ts: withTenant hands fn's value back from outside the tenant
  // context, so a lazy thenable returned un-awaited (a drizzle query) runs in the caller's
  // context — here as HomeDepot. Turn this into it() once withTenant awaits fn inside it.
  it('a drizzle query returned un-awaited from a nested withTenant runs as its tenant', async () => {
    const rows = await demo.tenantry.withTenant('HomeDepot', async () =>
      demo.tenantry.withTenant('Lowes', () => db.select({ name: customer.name }).from(customer)),
    );
    expect(rows.map((row) => row.name)).toContain('Fred Smith');
  });

  it('fails with TENANTRY_ERR_NO_TENANT outside a tenant context, never as another tenant', async () => {
    await expect(names()).rejects.toMatchObject({ cause: { code: 'TENANTRY_ERR_NO_TENANT' } });
    await expect(db.transaction(async (tx) => tx.select().from(customer))).rejects.toMatchObject({
      code: 'TENANTRY_ERR_NO_TENANT',
    });
  });
});
