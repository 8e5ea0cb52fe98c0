import { setImmediate as tick } from 'node:timers/promises';
import { sql as drizzleSql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';
import { CUSTOMERS, alternating, ownersOf, type DemoTenant } from './expect.js';

interface Database {
  customer: { name: string; state: string | null };
}

/** One app's four ways to PostgreSQL, all on the same connection string. */
interface App {
  readonly names: Record<string, () => Promise<string[]>>;
  readonly add: Record<string, (name: string) => Promise<unknown>>;
  close(): Promise<void>;
}

/** What an app builds from DATABASE_URL, untouched by tenantry. */
function app(url: string): App {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  const sql = postgres(url, { max: 4, onnotice: () => undefined });
  const kysely = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 4 }) }),
  });
  const db = drizzle({ connection: { connectionString: url, max: 4 } });
  const order = 'SELECT name FROM customer ORDER BY name';
  return {
    names: {
      pg: async () => (await pool.query<{ name: string }>(order)).rows.map((r) => r.name),
      postgres: async () =>
        (await sql<{ name: string }[]>`SELECT name FROM customer ORDER BY name`).map((r) => r.name),
      kysely: async () =>
        (await kysely.selectFrom('customer').select('name').orderBy('name').execute()).map((r) => r.name),
      drizzle: async () => (await db.execute<{ name: string }>(order)).rows.map((r) => r.name),
    },
    add: {
      pg: (name) => pool.query('INSERT INTO customer (name) VALUES ($1)', [name]),
      postgres: (name) => sql.begin((tx) => tx`INSERT INTO customer (name) VALUES (${name})`),
      kysely: (name) =>
        kysely.transaction().execute((trx) => trx.insertInto('customer').values({ name }).execute()),
      drizzle: (name) =>
        db.transaction((tx) => tx.execute(drizzleSql`INSERT INTO customer (name) VALUES (${name})`)),
    },
    async close() {
      await Promise.all([pool.end(), sql.end(), kysely.destroy(), db.$client.end()]);
    },
  };
}

const USERS: Record<DemoTenant, string> = { HomeDepot: 'alice@HomeDepot', Lowes: 'fred@Lowes' };

let fixture: GatewayFixture;
let apps: Record<DemoTenant, App>;

beforeAll(async () => {
  fixture = await gatewayFixture('integrations_gateway');
  apps = {
    HomeDepot: app(fixture.connectionString(USERS.HomeDepot)),
    Lowes: app(fixture.connectionString(USERS.Lowes)),
  };
});
afterAll(async () => {
  await Promise.all(Object.values(apps).map((a) => a.close()));
  await fixture.close();
});

describe('an unchanged app pointed at the gateway', () => {
  it.each(['pg', 'postgres', 'kysely', 'drizzle'])(
    '%s: two tenants at once each see only their rows',
    async (client) => {
      const seen = await Promise.all(
        alternating(20).map(async (tenant) => {
          const names = apps[tenant].names[client]!;
          const first = await names();
          await tick();
          return { tenant, first, second: await names() };
        }),
      );
      for (const { tenant, first, second } of seen) {
        expect({ tenant, first, second }).toEqual({
          tenant,
          first: CUSTOMERS[tenant],
          second: CUSTOMERS[tenant],
        });
      }
    },
  );

  it('writes from every client land in the tenant of the login', async () => {
    const clients = ['pg', 'postgres', 'kysely', 'drizzle'];
    await Promise.all(alternating(16).map((tenant, i) => apps[tenant].add[clients[i % 4]!]!(`gateway-${i}`)));
    for (const [i, tenant] of alternating(16).entries()) {
      expect(await ownersOf(fixture.tenantry, `gateway-${i}`)).toEqual([tenant]);
    }
    await fixture.tenantry.operator.query("DELETE FROM customer WHERE name LIKE 'gateway-%'");
  });

  it('transaction pooling: SET LOCAL and startup parameters hold, session SETs do not; the tenant cannot change', async () => {
    const url = fixture.connectionString(USERS.Lowes);
    const sql = postgres(url, { max: 1, connection: { TimeZone: 'Pacific/Auckland' } });
    try {
      const local = await sql.begin(async (tx) => {
        await tx`SET LOCAL statement_timeout = '1234ms'`;
        return (await tx`SHOW statement_timeout`)[0];
      });
      expect(local).toEqual({ statement_timeout: '1234ms' });
      // A session SET lasts for its own (implicit) transaction only.
      await sql`SET statement_timeout = '4321ms'`;
      expect((await sql`SHOW statement_timeout`)[0]).toEqual({ statement_timeout: '0' });
      expect((await sql`SHOW TimeZone`)[0]).toEqual({ TimeZone: 'Pacific/Auckland' });
      await expect(sql`SET ROLE postgres`).rejects.toMatchObject({ code: '42501' });
      await expect(sql`SELECT set_config('tenantry.tenant', '1', false)`).rejects.toMatchObject({
        code: '42501',
      });
      expect((await sql`SELECT count(*)::int AS n FROM customer`)[0]).toEqual({ n: 3 });
    } finally {
      await sql.end();
    }
  });
});
