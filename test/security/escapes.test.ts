import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import postgres from 'postgres';
import { expect } from 'vitest';
import {
  ALL_FACES,
  HOME_DEPOT_CUSTOMERS,
  LOWES_CUSTOMERS,
  TENANT_FACES,
  attack,
  attempt,
  column,
  useFixture,
  type SecurityFixture,
} from './harness.js';

const SECRET = 'lowes-only-secret';
/** postgres.js through the gateway, unnamed statements only (see sessions.test.ts for named ones). */
const PG_JS = { max: 1, prepare: false, fetch_types: false, onnotice: () => undefined } as const;

// Statements row-level security does not govern: TRUNCATE, COPY, NOTIFY, locks, EXPLAIN, statistics.
const fx = useFixture('sec_escapes', async (f) => {
  await f.operator(`CREATE TABLE public.probe (tenant_id integer NOT NULL, id integer NOT NULL, secret text NOT NULL,
                      PRIMARY KEY (tenant_id, id))`);
  await f.tenantry.tables.multiTenant('public.probe');
  await f.tenantry.withTenant('Lowes', (db) =>
    db.query('INSERT INTO probe (id, secret) SELECT g, $1 FROM generate_series(1, 400) g', [SECRET]),
  );
  await f.tenantry.withTenant('HomeDepot', (db) =>
    db.query("INSERT INTO probe (id, secret) VALUES (1, 'hd-1'), (2, 'hd-2'), (3, 'hd-3')"),
  );
  await f.operator('ANALYZE public.probe');
});

/** Both tenants' customers are as the demo made them. */
async function untouched(f: SecurityFixture): Promise<void> {
  const rows = await f.operator<{ tenant_id: number; name: string }>(
    'SELECT tenant_id, name FROM public.customer WHERE tenant_id IN ($1, $2)',
    [f.id('HomeDepot'), f.id('Lowes')],
  );
  expect(
    column(
      rows.filter((r) => r.tenant_id === f.id('Lowes')),
      'name',
    ),
  ).toEqual(LOWES_CUSTOMERS);
  expect(
    column(
      rows.filter((r) => r.tenant_id === f.id('HomeDepot')),
      'name',
    ),
  ).toEqual(HOME_DEPOT_CUSTOMERS);
}

/** Every "Actual Rows" and "Rows Removed by Filter" of an EXPLAIN (ANALYZE, FORMAT JSON) plan. */
function counts(plan: unknown): number[] {
  if (Array.isArray(plan)) return plan.flatMap(counts);
  if (plan === null || typeof plan !== 'object') return [];
  const node = plan as Record<string, unknown>;
  const own = ['Actual Rows', 'Rows Removed by Filter', 'Rows Removed by Index Recheck']
    .map((k) => node[k])
    .filter((v): v is number => typeof v === 'number');
  return [...own, ...Object.values(node).flatMap(counts)];
}

/** The JSON plan of an EXPLAIN … FORMAT JSON answer, whatever the face returned it as. */
function planOf(rows: Record<string, unknown>[]): unknown {
  const value = rows[0]?.['QUERY PLAN'];
  return typeof value === 'string' ? JSON.parse(value) : value;
}

// proves: TRUNCATE (which ignores row-level security) is refused on every name of a multi-tenant table
attack('TRUNCATE empties nothing', ALL_FACES, fx, async (face, f) => {
  for (const sql of [
    'TRUNCATE customer',
    'TRUNCATE tenantry_v."order"',
    'TRUNCATE public."order"',
    'TRUNCATE public.customer CASCADE',
  ]) {
    const outcome = await attempt(face, sql, undefined, 'admin@HomeDepot');
    expect(['42501', '42809'], `${sql}: ${JSON.stringify(outcome)}`).toContain(
      (outcome as { sqlstate?: string }).sqlstate,
    );
  }
  await untouched(f);
});

// proves: COPY out carries only the tenant's rows; COPY to or from server files and programs is refused
attack('COPY: out only own rows, never files or programs', ALL_FACES, fx, async (face, f) => {
  if (face.name === 'gateway') {
    const sql = postgres(f.gw.connectionString('alice@HomeDepot'), PG_JS);
    try {
      let text = '';
      const stream = await sql`copy (select name from customer) to stdout`.readable();
      await pipeline(
        stream,
        new Writable({ write: (chunk: Buffer, _e, done) => void ((text += chunk.toString()), done()) }),
      );
      expect(text.trim().split('\n').sort()).toEqual(HOME_DEPOT_CUSTOMERS);
    } finally {
      await sql.end();
    }
  } else {
    const out = await face.run('COPY (SELECT name FROM customer) TO STDOUT');
    expect(out.rowCount).toBe(3);
  }
  for (const sql of [
    "COPY (SELECT name FROM customer) TO '/tmp/tenantry-copy'",
    "COPY tenantry_v.customer (name) FROM '/etc/hostname'",
    "COPY (SELECT 1) TO PROGRAM 'id'",
  ]) {
    expect(await attempt(face, sql, undefined, 'admin@HomeDepot'), sql).toMatchObject({ sqlstate: '42501' });
  }
});

// proves: COPY FROM STDIN into a tenant's view lands every row in that tenant, none elsewhere
attack('COPY FROM STDIN writes only into the own tenant', ['gateway'], fx, async (_face, f) => {
  const sql = postgres(f.gw.connectionString('alice@HomeDepot'), PG_JS);
  try {
    const sink = await sql`copy customer (name, city, state) from stdin`.writable();
    sink.write('Copied One\tAtlanta\tGA\nCopied Two\tRaleigh\tNC\n');
    await new Promise<void>((resolve, reject) =>
      sink.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  } finally {
    await sql.end();
  }
  const rows = await f.operator<{ tenant_id: number }>(
    "SELECT tenant_id FROM public.customer WHERE name LIKE 'Copied %'",
  );
  expect(rows.map((r) => r.tenant_id)).toEqual([f.id('HomeDepot'), f.id('HomeDepot')]);
  await f.operator("DELETE FROM public.customer WHERE name LIKE 'Copied %'");
  await untouched(f);
});

// proves: no face can send notifications, and no LISTEN registration outlives the statement's connection use
attack('LISTEN/NOTIFY: nothing to receive, nothing sent with pg_notify', ALL_FACES, fx, async (face) => {
  const listen = await attempt(face, 'LISTEN tenantry_catalog');
  if (face.name === 'gateway') expect(listen).toMatchObject({ sqlstate: '42501' });
  const channels = await face.run('SELECT count(*)::int AS n FROM pg_listening_channels()');
  expect(channels.rows).toEqual([{ n: 0 }]);
  if (face.name !== 'lib-app') {
    expect(await attempt(face, "SELECT pg_notify('tenantry_catalog', 'tenant')")).toMatchObject({
      sqlstate: '42501',
    });
  }
  if (face.name === 'gateway')
    expect(await attempt(face, 'NOTIFY tenantry_catalog')).toMatchObject({ sqlstate: '42501' });
});

// proves: tenants take no advisory lock (a cluster-wide channel); trusted code's session locks end with its call
attack('advisory locks: refused to tenants, released after trusted code', ALL_FACES, fx, async (face, f) => {
  const sqls = [
    'SELECT pg_advisory_lock(4242)',
    'SELECT pg_try_advisory_xact_lock(4243)',
    'SELECT pg_advisory_unlock_all()',
  ];
  for (const sql of sqls) {
    const outcome = await attempt(face, sql);
    if (face.name === 'lib-app') expect('rows' in outcome, sql).toBe(true);
    else expect(outcome, sql).toMatchObject({ sqlstate: '42501' });
  }
  const [free] = await f.operator<{ ok: boolean }>('SELECT pg_try_advisory_lock(4242) AS ok');
  expect(free?.ok).toBe(true);
  await f.operator('SELECT pg_advisory_unlock(4242)');
});

// proves: tenant roles see no other session (their queries, users, locks)
attack('other sessions are invisible', TENANT_FACES, fx, async (face) => {
  for (const sql of [
    'SELECT query FROM pg_stat_activity',
    'SELECT * FROM pg_stat_get_activity(NULL)',
    'SELECT * FROM pg_locks',
    'SELECT * FROM pg_stat_progress_vacuum',
  ]) {
    expect(await attempt(face, sql), sql).toMatchObject({ sqlstate: '42501' });
  }
});

// proves: statistics views hide multi-tenant tables' values (pg_stats, pg_stats_ext); pg_statistic is closed
attack('statistics views show no other tenant’s values', ALL_FACES, fx, async (face) => {
  const stats = await face.run(
    "SELECT count(*)::int AS n FROM pg_stats WHERE tablename IN ('probe', 'customer') OR most_common_vals::text LIKE $1",
    [`%${SECRET}%`],
  );
  expect(stats.rows).toEqual([{ n: 0 }]);
  expect(
    (await face.run("SELECT count(*)::int AS n FROM pg_stats_ext WHERE tablename = 'probe'")).rows,
  ).toEqual([{ n: 0 }]);
  expect(await attempt(face, 'SELECT * FROM pg_statistic')).toMatchObject({ sqlstate: '42501' });
  if (face.name !== 'lib-app') {
    const created = await attempt(
      face,
      'CREATE STATISTICS probe_stats ON id, secret FROM tenantry_v.probe',
      undefined,
      'admin@HomeDepot',
    );
    expect(['42501', '42809']).toContain((created as { sqlstate?: string }).sqlstate);
  }
});

// proves: EXPLAIN ANALYZE's counts never depend on other tenants' values (it shows the table-wide row
// count a sequential scan filters, like pg_class.reltuples does — docs/rights.md), and its result rows are own rows
attack('EXPLAIN ANALYZE reveals nothing of other tenants’ values', ['lib-app'], fx, async (face) => {
  // (trusted code may EXPLAIN; the actual row counts it sees are its tenant's)
  const analyze = async (where: string) => {
    const { rows } = await face.run(`EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM probe WHERE ${where}`);
    const plan = planOf(rows) as [{ Plan: { 'Actual Rows': number } }];
    return { top: plan[0].Plan['Actual Rows'], counts: counts(plan) };
  };
  const held = await analyze(`secret = '${SECRET}'`);
  const nobody = await analyze("secret = 'a-value-nobody-has'");
  expect(held).toEqual(nobody);
  expect(held.top).toBe(0);
  expect((await analyze("secret LIKE 'hd-%'")).top).toBe(3);
});

// proves: tenant SQL cannot EXPLAIN at all — the planner's estimates come from statistics over
// every tenant's rows and would tell whether another tenant holds a value (PostgreSQL cannot
// refuse it by privilege, so the second wall does, on every face that runs tenant SQL)
attack(
  'EXPLAIN is refused for tenant SQL (estimates come from every tenant’s rows)',
  // (the library's identity 'tenant' runs SQL as given: docs/rights.md)
  ['gateway', 'http'],
  fx,
  async (face) => {
    for (const sql of [
      `EXPLAIN (FORMAT JSON) SELECT * FROM probe WHERE secret = '${SECRET}'`,
      `explain analyze select * from probe`,
      `/* hi */ EXPLAIN select 1`,
    ]) {
      expect(await attempt(face, sql), sql).toMatchObject({ sqlstate: '42501' });
    }
  },
);

// proves: tenantry's catalog (tenants, credentials, secrets, roles) is closed to every face
attack('the catalog is closed', ALL_FACES, fx, async (face, f) => {
  for (const table of ['tenant', 'credential', 'secret', 'tenant_role', 'app_user', 'sequence_value']) {
    expect(await attempt(face, `SELECT * FROM tenantry.${table}`), table).toMatchObject({
      sqlstate: '42501',
    });
  }
  expect(await attempt(face, "SELECT nextval('tenantry.regular_tenant_id')")).toMatchObject({
    sqlstate: '42501',
  });
  if (face.name !== 'lib-app') {
    // the cross-tenant scan function (it sets the tenant per batch) is the application role's only
    const scan = `SELECT * FROM tenantry.scan_tenants(ARRAY[$1::integer], ARRAY['tenantry_v'], ARRAY[false],
                    'SELECT name FROM customer', false, 'tenantry.scan_x') AS t(tid integer, name text)`;
    expect(await attempt(face, scan, [f.id('Lowes')])).toMatchObject({ sqlstate: '42501' });
  }
});
