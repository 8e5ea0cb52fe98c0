import net from 'node:net';
import pg from 'pg';
import { expect } from 'vitest';
import { createTenantry, getTenant, isTenantryError, type TenantDb, type Tenantry } from '../../src/index.js';
import {
  ALL_FACES,
  HOME_DEPOT_CUSTOMERS,
  LIBRARY_FACES,
  LOWES_CUSTOMERS,
  attack,
  attempt,
  column,
  useFixture,
  type Face,
  type SecurityFixture,
} from './harness.js';

// Pooled connections and async contexts: nothing of one call may reach the next.
const fx = useFixture('sec_sessions');
const admin = 'admin@HomeDepot' as const;

/** A second instance on the same database with one connection, so consecutive calls share a backend. */
async function solo<T>(f: SecurityFixture, fn: (t: Tenantry) => Promise<T>): Promise<T> {
  const t = await createTenantry({ databaseUrl: f.gw.url, install: false, pool: { budget: 1 } });
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

const names = async (db: TenantDb, sql = 'SELECT name FROM customer') =>
  column((await db.query(sql)).rows, 'name');

/** What a session could have been left with: settings, statements, cursors, temporary tables. */
const LEFT_OVER = `SELECT current_setting('work_mem') AS work_mem,
  (SELECT count(*) FROM pg_prepared_statements WHERE name = 'left_stmt')::int AS prepared,
  (SELECT count(*) FROM pg_cursors WHERE name = 'left_cur')::int AS cursors,
  (SELECT count(*) FROM pg_class WHERE relname = 'left_behind' AND relpersistence = 't')::int AS temp`;
const LEAVE = [
  "SET work_mem = '1234kB'",
  'PREPARE left_stmt AS SELECT 1',
  'DECLARE left_cur CURSOR WITH HOLD FOR SELECT 1',
  'CREATE TEMP TABLE left_behind (x integer)',
];

// proves: settings, prepared statements, held cursors and temporary tables never reach the next user of a connection
attack('session state does not carry over to the next session', ALL_FACES, fx, async (face, f) => {
  const clean = { work_mem: '4MB', prepared: 0, cursors: 0, temp: 0 };
  if (face.name === 'lib-app') {
    await solo(f, async (t) => {
      const pid = await t.withTenant('Lowes', async (db) => {
        await db.query(
          `${LEAVE.join('; ')}; SET search_path = public; SET tenantry.tenant = '${f.id('Lowes')}'`,
        );
        return (await db.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid as number;
      });
      await t.withTenant('HomeDepot', async (db) => {
        expect((await db.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid).toBe(pid);
        expect((await db.query(LEFT_OVER)).rows[0]).toEqual(clean);
        expect(await names(db)).toEqual(HOME_DEPOT_CUSTOMERS);
      });
    });
    return;
  }
  if (face.name === 'gateway') {
    const first = await f.session(admin);
    for (const sql of LEAVE) await first.query(sql);
    await first.end();
    const second = await f.session(admin);
    expect((await second.query(LEFT_OVER)).rows[0]).toEqual(clean);
    return;
  }
  if (face.name === 'lib-tenant') await face.run(LEAVE.join('; '), undefined, admin);
  else for (const sql of LEAVE) await face.run(sql, undefined, admin);
  expect((await face.run(LEFT_OVER, undefined, admin)).rows[0]).toEqual(clean);
});

// proves: a temporary table made with a pg_temp-qualified name does not carry one tenant's rows into the next tenant's calls
attack('a pg_temp table of one tenant is not visible to the next', ['lib-app'], fx, async (_face, f) => {
  await solo(f, async (t) => {
    await t.withTenant('Lowes', (db) =>
      db.query('CREATE TABLE pg_temp.customer AS SELECT name FROM customer'),
    );
    const seen = await t.withTenant('HomeDepot', (db) => names(db));
    expect(seen).toEqual(HOME_DEPOT_CUSTOMERS);
  });
});

// proves: a connection given back inside an open transaction is rolled back before anyone else uses it
attack('a connection returned mid-transaction is rolled back', ALL_FACES, fx, async (face, f) => {
  const leftover = async () =>
    (
      await f.operator<{ n: number }>(
        "SELECT count(*)::int AS n FROM public.customer WHERE name = 'Uncommitted'",
      )
    )[0]!.n;
  const begin = "BEGIN; INSERT INTO customer (name) VALUES ('Uncommitted')";
  if (face.name === 'lib-app') {
    await solo(f, async (t) => {
      await t.withTenant('Lowes', (db) => db.query(begin));
      await t.withTenant('HomeDepot', async (db) => {
        expect(await names(db)).toEqual(HOME_DEPOT_CUSTOMERS);
        // The left-over transaction had written (it had a transaction id); a fresh one has none.
        expect((await db.query('SELECT pg_current_xact_id_if_assigned() IS NULL AS fresh')).rows[0]).toEqual({
          fresh: true,
        });
      });
    });
  } else if (face.name === 'lib-tenant') {
    await face.run(begin);
    expect(column((await face.run('SELECT name FROM customer')).rows, 'name')).toEqual(HOME_DEPOT_CUSTOMERS);
  } else if (face.name === 'gateway') {
    const client = await f.session();
    await client.query('BEGIN');
    await client.query("INSERT INTO customer (name) VALUES ('Uncommitted')");
    await client.query("SELECT 1 FROM customer WHERE name = 'Albert Hall' FOR UPDATE");
    (client as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    const other = await f.session('admin@HomeDepot');
    await other.query("SET statement_timeout = '3s'");
    await other.query("UPDATE customer SET city = city WHERE name = 'Albert Hall'");
  } else {
    for (const sql of [
      'BEGIN',
      "INSERT INTO customer (name) SELECT 'Uncommitted' WHERE 1 / 0 = 1",
      'ROLLBACK',
      'COMMIT',
    ]) {
      await attempt(face, sql);
    }
    expect(column((await face.run('SELECT name FROM customer')).rows, 'name')).toEqual(HOME_DEPOT_CUSTOMERS);
  }
  await expect.poll(leftover, { timeout: 3_000 }).toBe(0);
});

/** Sends the gateway a CancelRequest for `client`'s running statement. */
function cancel(port: number, client: pg.Client): Promise<void> {
  const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(packet));
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}

// proves: a statement cancelled (or a client gone) mid-response leaves its backend clean for the next statement
attack('a query cancelled mid-response leaves nothing behind', ALL_FACES, fx, async (face, f) => {
  if (face.name === 'gateway') {
    const client = await f.session();
    const sleeping = client.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    await cancel(f.gw.gateway.port, client);
    expect(await sleeping).toMatchObject({ code: '57014' });
    expect(column((await client.query('SELECT name FROM customer')).rows, 'name')).toEqual(
      HOME_DEPOT_CUSTOMERS,
    );
    const streaming = await f.session();
    const big = streaming
      .query("SELECT g, repeat('x', 2000) FROM generate_series(1, 200000) g")
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    (streaming as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    await big;
    const next = await f.session();
    expect(column((await next.query('SELECT name FROM customer')).rows, 'name')).toEqual(
      HOME_DEPOT_CUSTOMERS,
    );
    return;
  }
  const timeout =
    face.name === 'http' ? 'SELECT pg_sleep(5)' : "SET LOCAL statement_timeout = '100ms'; SELECT pg_sleep(5)";
  const began = Date.now();
  expect(await attempt(face, timeout)).toMatchObject({ sqlstate: '57014' });
  expect(Date.now() - began).toBeLessThan(4_000);
  const { rows } = await face.run(
    "SELECT current_setting('statement_timeout') AS t, tenantry.tenant_name() AS n",
  );
  expect(rows[0]).toMatchObject({ n: 'HomeDepot' });
  if (face.name !== 'http') expect(rows[0]?.t).not.toBe('100ms');
});

// proves: the tenant context follows each call through awaits, timers and concurrency, and never mixes two tenants
attack('context is neither lost nor mixed across await', LIBRARY_FACES, fx, async (face, f) => {
  const identity = face.name === 'lib-app' ? 'app' : 'tenant';
  const pause = (i: number) =>
    new Promise<void>((r) => (i % 3 === 0 ? setImmediate(r) : setTimeout(r, i % 7)));
  const work = Array.from({ length: 24 }, (_, i) => {
    const tenant = i % 2 === 0 ? 'HomeDepot' : 'Lowes';
    return f.tenantry.withTenant(
      tenant,
      async (db) => {
        await pause(i);
        const first = await f.tenantry.query<{ t: string }>('SELECT tenantry.tenant_name() AS t');
        await pause(i + 1);
        const later = await new Promise<string>((resolve) =>
          setTimeout(() => resolve(getTenant().name), i % 5),
        );
        return { tenant, t: first.rows[0]?.t, later, names: await names(db) };
      },
      { identity },
    );
  });
  for (const r of await Promise.all(work)) {
    expect(r.t).toBe(r.tenant);
    expect(r.later).toBe(r.tenant);
    expect(r.names).toEqual(r.tenant === 'HomeDepot' ? HOME_DEPOT_CUSTOMERS : LOWES_CUSTOMERS);
  }
  // a nested tenant never joins the outer tenant's transaction; outside any tenant there is none
  await f.tenantry.withTenant(
    'HomeDepot',
    (db) =>
      db.transaction(async () => {
        const inner = await f.tenantry.withTenant('Lowes', (lowes) => names(lowes), { identity });
        expect(inner).toEqual(LOWES_CUSTOMERS);
        expect(await names(f.tenantry.db())).toEqual(HOME_DEPOT_CUSTOMERS);
      }),
    { identity },
  );
  const outside = await f.tenantry.query('SELECT 1').catch((e: unknown) => e);
  expect(isTenantryError(outside, 'NO_TENANT')).toBe(true);
});

// proves: a transaction handle kept after its transaction ended cannot run statements (on a connection someone else now holds)
attack('a transaction handle used after its end is refused', LIBRARY_FACES, fx, async (face, f) => {
  const identity = face.name === 'lib-app' ? 'app' : 'tenant';
  await solo(f, async (t) => {
    const instance = face.name === 'lib-app' ? t : f.tenantry;
    let stale: TenantDb | undefined;
    await instance.withTenant('Lowes', (db) => db.transaction(async (tx) => void (stale = tx)), {
      identity,
    });
    const leaked = await instance.withTenant(
      'HomeDepot',
      (db) =>
        db.transaction(async (tx) => {
          await tx.query('SELECT 1');
          return stale!.query('SELECT name FROM customer').then(
            (r) => column(r.rows, 'name'),
            (e: unknown) => e,
          );
        }),
      { identity },
    );
    expect(leaked).not.toEqual(HOME_DEPOT_CUSTOMERS);
    expect(leaked).toBeInstanceOf(Error);
  });
});

// proves: a backend reset by one user of a tenant's pool (the library) keeps the gateway's prepared statements usable
attack(
  'prepared statements survive a reset by another user of the same pool',
  ['gateway'],
  fx,
  async (_face, f) => {
    const client = await f.session('nina@LowesNY');
    const named = { name: 'count_items', text: 'SELECT count(*)::int AS n FROM item' };
    expect((await client.query(named)).rows).toEqual([{ n: 6 }]);
    await f.faces['lib-tenant'].run('SELECT 1', undefined, 'nina@LowesNY');
    expect((await client.query(named)).rows).toEqual([{ n: 6 }]);
  },
);

export type { Face };
