import { Kysely, PostgresDialect, sql, type Generated } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantryDialect, tenantryPgPool } from '../../src/index.js';
import { demoDatabase, type DemoDatabase } from './demo.js';
import { alternating, expectAllReleased, expectIsolatedReads, ownersOf } from './expect.js';

interface Database {
  customer: { cust_num: Generated<string>; name: string; city: string | null; state: string | null };
}

interface Backend {
  pid: number;
  xid: string;
}

const backend = sql<Backend>`SELECT pg_backend_pid() AS pid, txid_current()::text AS xid`;

let demo: DemoDatabase;
let db: Kysely<Database>;

beforeAll(async () => {
  demo = await demoDatabase('kysely');
  db = new Kysely<Database>({ dialect: new TenantryDialect({ tenantry: demo.tenantry }) });
});
afterAll(async () => {
  await db.destroy();
  await demo.tenantry.close();
});

const names = async (kysely: Kysely<Database> = db): Promise<string[]> =>
  (await kysely.selectFrom('customer').select('name').orderBy('name').execute()).map((row) => row.name);

describe('TenantryDialect', () => {
  it('one Kysely instance serves two tenants at once, each seeing only its rows', async () => {
    await expectIsolatedReads(demo.tenantry, () => names());
    await expectAllReleased(demo.tenantry);
  });

  it('writes land in the tenant in context, in and out of transactions', async () => {
    await Promise.all(
      alternating(20).map((tenant, i) =>
        demo.tenantry.withTenant(tenant, async () => {
          const name = `kysely-write-${i}`;
          if (i % 4 < 2) {
            await db.insertInto('customer').values({ name, state: 'GA' }).execute();
          } else {
            await db.transaction().execute((trx) => trx.insertInto('customer').values({ name }).execute());
          }
        }),
      ),
    );
    for (const [i, tenant] of alternating(20).entries()) {
      expect(await ownersOf(demo.tenantry, `kysely-write-${i}`)).toEqual([tenant]);
    }
    await demo.tenantry.operator.query("DELETE FROM customer WHERE name LIKE 'kysely-write-%'");
  });

  it("runs a transaction's statements on one backend, in one transaction, while others run", async () => {
    const runs = await Promise.all(
      alternating(10).map((tenant) =>
        demo.tenantry.withTenant(tenant, () =>
          db.transaction().execute(async (trx) => {
            const seen: Backend[] = [];
            for (let i = 0; i < 3; i++) {
              seen.push((await backend.execute(trx)).rows[0]!);
              await trx.selectFrom('customer').select('name').execute();
            }
            return seen;
          }),
        ),
      ),
    );
    for (const seen of runs) expect(new Set(seen.map((b) => `${b.pid}/${b.xid}`)).size).toBe(1);
  });

  it('rolls back when the callback throws, and commits otherwise', async () => {
    await demo.tenantry.withTenant('Lowes', async () => {
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.insertInto('customer').values({ name: 'kysely-rolled-back' }).execute();
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      await db
        .transaction()
        .execute((trx) => trx.insertInto('customer').values({ name: 'kysely-kept' }).execute());
    });
    expect(await ownersOf(demo.tenantry, 'kysely-rolled-back')).toEqual([]);
    expect(await ownersOf(demo.tenantry, 'kysely-kept')).toEqual(['Lowes']);
    await expectAllReleased(demo.tenantry);
  });

  it('supports controlled transactions and savepoints', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      const trx = await db.startTransaction().execute();
      await trx.insertInto('customer').values({ name: 'kysely-before-savepoint' }).execute();
      const afterSavepoint = await trx.savepoint('sp1').execute();
      await afterSavepoint.insertInto('customer').values({ name: 'kysely-after-savepoint' }).execute();
      const rolledBack = await afterSavepoint.rollbackToSavepoint('sp1').execute();
      await rolledBack.commit().execute();
    });
    expect(await ownersOf(demo.tenantry, 'kysely-before-savepoint')).toEqual(['HomeDepot']);
    expect(await ownersOf(demo.tenantry, 'kysely-after-savepoint')).toEqual([]);
  });

  it("joins tenantry's own transaction, and nests in it as a savepoint", async () => {
    await demo.tenantry.withTenant('HomeDepot', (tenantDb) =>
      tenantDb.transaction(async (tx) => {
        const outer = (await tx.query<Backend>('SELECT pg_backend_pid() AS pid, txid_current()::text AS xid'))
          .rows[0];
        expect((await backend.execute(db)).rows[0]).toEqual(outer);
        await db.insertInto('customer').values({ name: 'kysely-joined' }).execute();
        await expect(
          db.transaction().execute(async (trx) => {
            expect((await backend.execute(trx)).rows[0]).toEqual(outer);
            await trx.insertInto('customer').values({ name: 'kysely-nested' }).execute();
            throw new Error('undo the nested one');
          }),
        ).rejects.toThrow('undo the nested one');
      }),
    );
    expect(await ownersOf(demo.tenantry, 'kysely-joined')).toEqual(['HomeDepot']);
    expect(await ownersOf(demo.tenantry, 'kysely-nested')).toEqual([]);
  });

  it('accepts the isolation level in effect, refuses another, and honours read only', async () => {
    await demo.tenantry.withTenant('Lowes', async () => {
      const level = await db
        .transaction()
        .setIsolationLevel('read committed')
        .execute(
          async (trx) => (await sql<{ level: string }>`SHOW transaction_isolation`.execute(trx)).rows[0],
        );
      expect(level).toEqual({ transaction_isolation: 'read committed' });
      await expect(
        db
          .transaction()
          .setIsolationLevel('serializable')
          .execute(() => names()),
      ).rejects.toMatchObject({ code: 'TENANTRY_ERR_INVALID_ARGUMENT' });
      await expect(
        db
          .transaction()
          .setAccessMode('read only')
          .execute((trx) => trx.insertInto('customer').values({ name: 'kysely-read-only' }).execute()),
      ).rejects.toMatchObject({ code: '25006' });
      expect(await names()).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon', 'kysely-kept']);
    });
    await expectAllReleased(demo.tenantry);
  });

  it("gives any isolation level under the tenant's own login role", async () => {
    await demo.tenantry.tenants.ensureLoginRole('HomeDepot');
    const levels = await demo.tenantry.withTenant(
      'HomeDepot',
      () =>
        Promise.all(
          (['serializable', 'repeatable read'] as const).map((level) =>
            db
              .transaction()
              .setIsolationLevel(level)
              .execute(async (trx) => {
                const { rows } = await sql<{
                  transaction_isolation: string;
                }>`SHOW transaction_isolation`.execute(trx);
                return [rows[0]?.transaction_isolation, await names(trx)];
              }),
          ),
        ),
      { identity: 'tenant' },
    );
    const homeDepot = ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'];
    expect(levels).toEqual([
      ['serializable', expect.arrayContaining(homeDepot)],
      ['repeatable read', expect.arrayContaining(homeDepot)],
    ]);
  });

  it('refuses writes for a read-only handle, even when a transaction asks for read write', async () => {
    await demo.tenantry.withTenant(
      'Lowes',
      async () => {
        await expect(db.insertInto('customer').values({ name: 'kysely-ro' }).execute()).rejects.toMatchObject(
          {
            code: '25006',
          },
        );
        // PostgreSQL refuses to make the read-only transaction read-write (25001).
        await expect(
          db
            .transaction()
            .setAccessMode('read write')
            .execute(() => names()),
        ).rejects.toMatchObject({ code: 'TENANTRY_ERR_INVALID_ARGUMENT', cause: { code: '25001' } });
      },
      { readOnly: true },
    );
  });

  it('streams through a cursor, in a transaction of its own or in the open one', async () => {
    await demo.tenantry.withTenant('HomeDepot', async () => {
      const chunks: string[] = [];
      for await (const row of db
        .selectFrom('customer')
        .select('name')
        .where('name', 'like', 'C%')
        .orderBy('name')
        .stream(1)) {
        chunks.push(row.name);
      }
      expect(chunks).toEqual(['Candace Jones', 'Carrie Abrahm']);
      await db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('customer').values({ name: 'Cy Uncommitted' }).execute();
          const seen: string[] = [];
          for await (const row of trx
            .selectFrom('customer')
            .select('name')
            .where('name', 'like', 'C%')
            .orderBy('name')
            .stream(2)) {
            seen.push(row.name);
          }
          expect(seen).toEqual(['Candace Jones', 'Carrie Abrahm', 'Cy Uncommitted']);
          throw new Error('roll it back');
        })
        .catch(() => undefined);
      // Leaving a stream early closes its cursor and transaction.
      for await (const row of db.selectFrom('customer').select('name').orderBy('name').stream(1)) {
        expect(row.name).toBe('Albert Hall');
        break;
      }
    });
    await expectAllReleased(demo.tenantry);
    await expect(
      demo.tenantry.withTenant('Lowes', async () => {
        const rows = [];
        for await (const row of db.selectFrom('customer').select('name').orderBy('name').stream())
          rows.push(row.name);
        return rows;
      }),
    ).resolves.toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon', 'kysely-kept']);
  });

  it('fails with TENANTRY_ERR_NO_TENANT outside a tenant context', async () => {
    const noTenant = { code: 'TENANTRY_ERR_NO_TENANT' };
    await expect(names()).rejects.toMatchObject(noTenant);
    await expect(db.transaction().execute((trx) => names(trx))).rejects.toMatchObject(noTenant);
    await expect(db.selectFrom('customer').selectAll().stream().next()).rejects.toMatchObject(noTenant);
  });

  it('introspects as the tenant in context', async () => {
    const tables = await demo.tenantry.withTenant('Lowes', () => db.introspection.getTables());
    expect(tables.map((table) => table.name)).toContain('customer');
    await expect(db.introspection.getTables()).rejects.toMatchObject({ code: 'TENANTRY_ERR_NO_TENANT' });
  });
});

describe("kysely's own PostgresDialect over tenantryPgPool", () => {
  it('isolates tenants and keeps transactions on one backend', async () => {
    const stock = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: tenantryPgPool(demo.tenantry) }),
    });
    await expectIsolatedReads(demo.tenantry, async () =>
      (await names(stock)).filter((name) => !name.startsWith('kysely') && !name.startsWith('Cy')),
    );
    const seen = await demo.tenantry.withTenant('Lowes', () =>
      stock
        .transaction()
        .execute(async (trx) => [(await backend.execute(trx)).rows[0], (await backend.execute(trx)).rows[0]]),
    );
    expect(seen[0]).toEqual(seen[1]);
    await stock.destroy();
    await expectAllReleased(demo.tenantry);
  });
});
