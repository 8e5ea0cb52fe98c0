import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';

const run = promisify(execFile);
const env = { ...process.env, PGSSLMODE: 'disable', PGPASSWORD: 'demo' };
let fx: GatewayFixture;

beforeAll(async () => {
  fx = await gatewayFixture('gw_clients');
});
afterAll(async () => {
  await fx.close();
});

const HOME_DEPOT = ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'];

describe('real clients through the gateway', () => {
  it('pgbench initialises its tables (COPY in) and runs in simple, extended and prepared modes', async () => {
    const url = fx.connectionString('admin@HomeDepot');
    await run('pgbench', ['-i', '-s', '1', '-q', url], { env });
    for (const mode of ['simple', 'extended', 'prepared']) {
      const { stdout } = await run('pgbench', ['-M', mode, '-c', '4', '-j', '2', '-t', '200', url], { env });
      expect(stdout, mode).toMatch(/number of transactions actually processed: 800\/800/);
      expect(stdout, mode).toMatch(/number of failed transactions: 0 /);
    }
    // The tables are the tenant's own: another tenant does not see them.
    const fred = await fx.connect('fred@Lowes');
    await expect(fred.query('select count(*) from pgbench_accounts')).rejects.toMatchObject({
      code: '42P01',
    });
  }, 120_000);

  it('psql: COPY out and in, notices, \\d', async () => {
    const url = fx.connectionString('admin@HomeDepot');
    const out = await run('psql', [url, '-Atc', 'copy (select name from customer order by 1) to stdout'], {
      env,
    });
    expect(out.stdout.trim().split('\n')).toEqual(HOME_DEPOT);
    await run('psql', [url, '-c', 'create table notes (id int primary key, body text)'], { env });
    const child = run('psql', [url, '-c', '\\copy notes from stdin'], { env });
    child.child.stdin?.end('1\tfirst\n2\tsecond\n');
    await child;
    const count = await run('psql', [url, '-Atc', 'select count(*) from notes'], { env });
    expect(count.stdout.trim()).toBe('2');
    const notice = await run(
      'psql',
      [url, '-c', "do $$ begin raise notice 'hello from %', tenantry.tenant_name(); end $$"],
      { env },
    );
    expect(notice.stderr).toMatch(/NOTICE:\s+hello from HomeDepot/);
    const describe = await run('psql', [url, '-c', '\\d customer'], { env });
    expect(describe.stdout).toMatch(/name/);
    expect(describe.stdout).not.toMatch(/tenant_id/);
  });

  it('postgres.js (named prepared statements, transactions)', async () => {
    const client = postgres(fx.connectionString('alice@HomeDepot'), {
      max: 3,
      prepare: true,
      onnotice: () => undefined,
    });
    try {
      for (let i = 0; i < 5; i++) {
        const rows = await client<
          { name: string }[]
        >`select name from customer where name like ${'%'} order by name`;
        expect(rows.map((r) => r.name)).toEqual(HOME_DEPOT);
      }
      const inTx = await client
        .begin(async (tx) => {
          await tx`insert into notes_pgjs_probe select 1 where false`.catch(() => undefined);
          return tx<{ t: string }[]>`select tenantry.tenant_name() as t`;
        })
        .catch(async () => client<{ t: string }[]>`select tenantry.tenant_name() as t`);
      expect(inTx[0]?.t).toBe('HomeDepot');
      const [row] = await client.begin((tx) => tx<{ n: number }[]>`select count(*)::int as n from customer`);
      expect(row?.n).toBe(3);
    } finally {
      await client.end();
    }
  });

  it('a pipelined batch whose implicit commit fails (deferred constraint) answers each query its own result', async () => {
    await fx.tenantry.operator.query(
      `CREATE TABLE public.dfr (tenant_id int NOT NULL, id int NOT NULL, code int NOT NULL, PRIMARY KEY (tenant_id, id),
         CONSTRAINT dfr_code UNIQUE (tenant_id, code) DEFERRABLE INITIALLY DEFERRED)`,
    );
    await fx.tenantry.tables.multiTenant('public.dfr');
    // One connection: postgres.js sends every query (Parse … Sync) without waiting for answers.
    const client = postgres(fx.connectionString('alice@HomeDepot'), { max: 1, onnotice: () => undefined });
    try {
      for (let round = 0; round < 3; round++) {
        const [bad, good, after] = await Promise.allSettled([
          client`insert into dfr (id, code) values (${round * 2 + 1}, 7), (${round * 2 + 2}, 7)`,
          client<{ n: number }[]>`select ${41 + round}::int as n`,
          client<{ t: string }[]>`select tenantry.tenant_name() as t`,
        ]);
        expect(bad.status).toBe('rejected');
        expect((bad as PromiseRejectedResult).reason).toMatchObject({ code: '23505' });
        expect(good).toMatchObject({ status: 'fulfilled', value: [{ n: 41 + round }] });
        expect(after).toMatchObject({ status: 'fulfilled', value: [{ t: 'HomeDepot' }] });
      }
      expect(await client<{ n: number }[]>`select count(*)::int as n from dfr`).toEqual([{ n: 0 }]);
    } finally {
      await client.end();
    }
  });

  it('Kysely over a node-postgres pool', async () => {
    const db = new Kysely<{ customer: { name: string; cust_num: number } }>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: fx.connectionString('fred@Lowes'), max: 2 }),
      }),
    });
    try {
      const rows = await db.selectFrom('customer').select('name').orderBy('name').execute();
      expect(rows.map((r) => r.name)).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
      const tenant = await sql<{ t: string }>`select tenantry.tenant_name() as t`.execute(db);
      expect(tenant.rows[0]?.t).toBe('Lowes');
      await db.transaction().execute(async (tx) => {
        const count = await tx
          .selectFrom('customer')
          .select(sql<number>`count(*)::int`.as('n'))
          .executeTakeFirstOrThrow();
        expect(count.n).toBe(3);
      });
    } finally {
      await db.destroy();
    }
  });

  it('named prepared statements survive transaction pooling across many clients and backends', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => fx.connect('alice@HomeDepot')));
    await Promise.all(
      clients.map(async (client, n) => {
        for (let i = 0; i < 20; i++) {
          // Same name, different text per client; and the same text under different names.
          const own = await client.query({
            name: 'q',
            text: `select name, ${n} as n from customer order by name`,
          });
          expect(own.rows.map((r: { n: number }) => r.n)).toEqual([n, n, n]);
          const shared = await client.query({
            name: `s${n}`,
            text: 'select count(*)::int as c from customer where name <> $1',
            values: ['x'],
          });
          expect(shared.rows[0]).toEqual({ c: 3 });
        }
      }),
    );
  });
});

describe('nothing a client leaves on a backend reaches the next client', () => {
  it('settings, temp tables, prepared statements and cursors are gone for the next transaction', async () => {
    const a = await fx.connect('admin@HomeDepot');
    const b = await fx.connect('admin@HomeDepot');
    await a.query("set work_mem = '1234kB'");
    await a.query('create temp table scratch (x int)');
    await a.query('prepare leftover as select 1');
    await a.query('begin; declare held cursor with hold for select 1; commit');
    for (let i = 0; i < 5; i++) {
      for (const client of [a, b]) {
        const { rows } = await client.query<{ w: string }>("select current_setting('work_mem') as w");
        expect(rows[0]?.w).toBe('4MB');
        await expect(client.query('select * from scratch')).rejects.toMatchObject({ code: '42P01' });
        await expect(client.query('execute leftover')).rejects.toMatchObject({ code: '26000' });
      }
    }
  });

  it('a SET behind a comment is noticed too: the next transaction runs without it', async () => {
    const a = await fx.connect('admin@HomeDepot');
    const b = await fx.connect('admin@HomeDepot');
    for (const sql of ["/* app */ set work_mem = '2345kB'", "-- app\nset work_mem = '3456kB'"]) {
      await a.query(sql);
      for (let i = 0; i < 5; i++) {
        for (const client of [a, b]) {
          const { rows } = await client.query<{ w: string }>("select current_setting('work_mem') as w");
          expect(rows[0]?.w, sql).toBe('4MB');
        }
      }
    }
    // A named statement that sets something, run again later (Bind only, maybe on another backend).
    for (let i = 0; i < 3; i++) {
      await a.query({
        name: 'mem',
        text: "select set_config('work_mem', $1, false)",
        values: [`${5000 + i}kB`],
      });
      for (const client of [a, b]) {
        const { rows } = await client.query<{ w: string }>("select current_setting('work_mem') as w");
        expect(rows[0]?.w, `round ${i}`).toBe('4MB');
      }
    }
    await Promise.all([a.end(), b.end()]);
  });

  it('a client gone mid-transaction leaves no open transaction and no leaked connection', async () => {
    await (
      await fx.connect('admin@HomeDepot')
    ).query('create table if not exists ledger (id int primary key)');
    const a = await fx.connect('alice@HomeDepot');
    await a.query('begin');
    await a.query('insert into ledger values (1)');
    (a as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    const b = await fx.connect('alice@HomeDepot');
    const { rows } = await b.query('select * from ledger');
    expect(rows).toEqual([]);
    await b.query('insert into ledger values (1)');
    await waitFor(() => fx.tenantry.poolStats().servers.every((s) => s.inUse === 0));
  });

  it('a query cancelled with the right key stops; a wrong key is ignored', async () => {
    const a = await fx.connect('alice@HomeDepot');
    const key = a as unknown as { processID: number; secretKey: number };
    const slow = a.query('select pg_sleep(5)');
    await new Promise((r) => setTimeout(r, 300));
    await sendCancel(fx.gateway.port, key.processID, key.secretKey + 1);
    await sendCancel(fx.gateway.port, key.processID + 1, key.secretKey);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await sendCancel(fx.gateway.port, key.processID, key.secretKey);
    await expect(slow).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(4_000);
    expect((await a.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('a cancel sent while the statement waits for a backend stops it once it runs, and nothing after it', async () => {
    const narrow = await gatewayFixture('gw_cancel_wait', {}, { pool: { perTenantMax: 1 } });
    try {
      const holder = await narrow.connect('alice@HomeDepot');
      const waiter = await narrow.connect('alice@HomeDepot', 'demo', { options: '-c DateStyle=German' });
      await holder.query('begin');
      await holder.query('select 1');
      const key = waiter as unknown as { processID: number; secretKey: number };
      // Waits for HomeDepot's only backend; once it runs, the gateway first applies the
      // client's DateStyle (its own SET), then the statement: the cancel must hit the statement.
      const slow = waiter.query('select pg_sleep(30)').then(
        () => 'finished',
        (e: { code?: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 200));
      await sendCancel(narrow.gateway.port, key.processID, key.secretKey);
      await holder.query('commit');
      expect(await slow).toBe('57014');
      for (const client of [waiter, holder, waiter]) {
        expect((await client.query("select to_char(date '2026-11-24', 'YYYY') as y")).rows).toEqual([
          { y: '2026' },
        ]);
      }
      expect((await waiter.query('show DateStyle')).rows).toEqual([{ DateStyle: 'German, DMY' }]);
    } finally {
      await narrow.close();
    }
  }, 20_000);

  it('a cancel for a statement whose checkout then fails is not kept for the next statement', async () => {
    const narrow = await gatewayFixture(
      'gw_cancel_fail',
      {},
      { pool: { perTenantMax: 1, checkoutTimeoutMs: 300 } },
    );
    try {
      const holder = await narrow.connect('alice@HomeDepot');
      const waiter = await narrow.connect('alice@HomeDepot');
      await holder.query('begin');
      await holder.query('select 1');
      const key = waiter as unknown as { processID: number; secretKey: number };
      const waiting = waiter.query('select 1').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 100)); // the statement waits for the backend
      await sendCancel(narrow.gateway.port, key.processID, key.secretKey);
      expect(await waiting).toMatchObject({
        message: expect.stringMatching(/TENANTRY_ERR_POOL_TIMEOUT/) as unknown,
      });
      await holder.query('commit');
      expect((await waiter.query('select pg_sleep(0.3), 1 as one')).rows).toEqual([{ pg_sleep: '', one: 1 }]);
    } finally {
      await narrow.close();
    }
  });
});

describe('operability', () => {
  it('counts each tenant’s transactions and errors in the tenant metrics', async () => {
    const before = { ...fx.tenantry.metrics.snapshot(100).get('Lowes') };
    const fred = await fx.connect('fred@Lowes');
    await fred.query('select 1');
    await fred.query('begin');
    await fred.query('select 2');
    await fred.query('commit');
    await fred.query('select nope').catch(() => undefined);
    const after = fx.tenantry.metrics.snapshot(100).get('Lowes');
    // At least these three transactions (Lowes clients of earlier tests may still be finishing
    // theirs: that once made an exact count flaky), one of them failed.
    expect((after?.queries ?? 0) - (before?.queries ?? 0)).toBeGreaterThanOrEqual(3);
    expect((after?.errors ?? 0) - (before?.errors ?? 0)).toBeGreaterThanOrEqual(1);
    await fred.end();
  });

  it('limits clients per tenant and reports clients in stats()', async () => {
    const limited = await gatewayFixture('gw_limits', { maxClientsPerTenant: 2, maxClients: 3 });
    try {
      await limited.connect('alice@HomeDepot');
      await limited.connect('alice@HomeDepot');
      await expect(limited.connect('alice@HomeDepot')).rejects.toMatchObject({ code: '53300' });
      await limited.connect('fred@Lowes');
      const stats = limited.gateway.stats();
      expect(stats.clients).toBe(3);
      expect(stats.tenants.find((t) => t.tenant === 'HomeDepot')?.clients).toBe(2);
      // Past the gateway's own limit: a FATAL 53300 the client can show, not a dropped connection.
      await expect(limited.connect('fred@Lowes')).rejects.toMatchObject({
        code: '53300',
        message: expect.stringMatching(/TENANTRY_ERR_TOO_MANY_CONNECTIONS/) as string,
      });
    } finally {
      await limited.close();
    }
  });

  it('session mode keeps session settings; shutdown lets a transaction finish, then closes', async () => {
    const session = await gatewayFixture('gw_session', { poolMode: 'session' });
    try {
      const a = await session.connect('alice@HomeDepot');
      await a.query("set work_mem = '1234kB'");
      await a.query('select 1');
      expect((await a.query<{ w: string }>("select current_setting('work_mem') as w")).rows[0]?.w).toBe(
        '1234kB',
      );
      await a.query('begin');
      await a.query('select 1');
      const closing = session.gateway.close(5_000);
      await expect(session.connect('fred@Lowes')).rejects.toThrow();
      await a.query('commit');
      await closing;
      await expect(a.query('select 1')).rejects.toThrow();
    } finally {
      await session.close();
    }
  });
});

async function sendCancel(port: number, pid: number, secret: number): Promise<void> {
  const net = await import('node:net');
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(pid | 0, 8);
  packet.writeInt32BE(secret | 0, 12);
  await new Promise<void>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(packet));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

async function waitFor(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}
