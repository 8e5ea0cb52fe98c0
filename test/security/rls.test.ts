import { expect } from 'vitest';
import {
  ALL_FACES,
  HOME_DEPOT_CUSTOMERS,
  LOWES_CUSTOMERS,
  LIBRARY_FACES,
  TENANT_FACES,
  attack,
  attempt,
  column,
  useFixture,
  type Face,
  type SecurityFixture,
} from './harness.js';

// Row-level security under attack: other names for the tables, settings, leaky functions.
const fx = useFixture('sec_rls', async (f) => {
  await f.operator(`CREATE TABLE public.event (tenant_id integer NOT NULL, id integer NOT NULL, what text NOT NULL,
                      PRIMARY KEY (tenant_id, id)) PARTITION BY HASH (tenant_id);
                    CREATE TABLE public.event_0 PARTITION OF public.event FOR VALUES WITH (MODULUS 2, REMAINDER 0);
                    CREATE TABLE public.event_1 PARTITION OF public.event FOR VALUES WITH (MODULUS 2, REMAINDER 1)`);
  await f.tenantry.tables.multiTenant('public.event');
  for (const [tenant, what] of [
    ['HomeDepot', 'hd-event'],
    ['Lowes', 'lowes-event'],
    ['LowesNY', 'ny-event'],
  ] as const) {
    await f.tenantry.withTenant(tenant, (db) =>
      db.query('INSERT INTO event (id, what) VALUES (1, $1)', [what]),
    );
  }
});

/** Lowes's customers as the operator sees them (the ground truth after an attack). */
async function lowesIntact(f: SecurityFixture): Promise<void> {
  const rows = await f.operator('SELECT name, city FROM public.customer WHERE tenant_id = $1', [
    f.id('Lowes'),
  ]);
  expect(column(rows, 'name')).toEqual(LOWES_CUSTOMERS);
  expect(rows.every((r) => r.city !== 'Hacked')).toBe(true);
}

/** The face still acts for HomeDepot and sees exactly its three customers. */
async function stillHomeDepot(face: Face): Promise<void> {
  const { rows } = await face.run(
    'SELECT tenantry.tenant_name() AS t, (SELECT count(*) FROM customer)::int AS n',
  );
  expect(rows[0]).toMatchObject({ t: 'HomeDepot', n: 3 });
}

// proves: every name of a multi-tenant table (its view, the facing view, TABLE) yields only the caller's rows
attack('reads only its own rows, under every name of the table', ALL_FACES, fx, async (face) => {
  for (const sql of [
    'SELECT name FROM customer',
    'SELECT name FROM tenantry_v.customer',
    'SELECT name FROM (TABLE tenantry_v.customer) c',
    'SELECT name FROM customer UNION ALL SELECT name FROM tenantry_v.customer WHERE false',
  ]) {
    expect(column((await face.run(sql)).rows, 'name'), sql).toEqual(HOME_DEPOT_CUSTOMERS);
  }
  expect(column((await face.run('SELECT name FROM customer', [], 'fred@Lowes')).rows, 'name')).toEqual(
    LOWES_CUSTOMERS,
  );
});

// proves: tenant roles cannot name base tables at all; trusted code that does still gets only its rows
attack('cannot reach base tables by their qualified names', ALL_FACES, fx, async (face) => {
  for (const sql of ['SELECT name FROM public.customer', 'SELECT count(*) FROM public."order"']) {
    const outcome = await attempt(face, sql);
    if (face.name === 'lib-app') expect('rows' in outcome, sql).toBe(true);
    else expect(outcome, sql).toMatchObject({ sqlstate: '42501' });
  }
  if (face.name === 'lib-app') {
    expect(column((await face.run('SELECT name FROM public.customer')).rows, 'name')).toEqual(
      HOME_DEPOT_CUSTOMERS,
    );
  }
});

// proves: turning row_security off makes PostgreSQL refuse the query instead of bypassing the policy
attack('row_security = off is refused, not obeyed', ALL_FACES, fx, async (face) => {
  const sql =
    face.name === 'http'
      ? "SELECT set_config('row_security', 'off', true), (SELECT count(*) FROM customer) AS n"
      : 'SET row_security = off; SELECT count(*) AS n FROM customer';
  const outcome = await attempt(face, sql);
  // refused (42501), or — HTTP plans its cursor before the setting changes — still filtered
  if ('rows' in outcome) expect(outcome.rows.at(-1)).toMatchObject({ n: '3' });
  else expect(outcome).toMatchObject({ sqlstate: '42501' });
  await stillHomeDepot(face);
});

// proves: UPDATE and DELETE aimed at another tenant's rows match nothing
attack('cannot update or delete another tenant’s rows', ALL_FACES, fx, async (face, f) => {
  expect((await face.run("UPDATE customer SET city = 'Hacked' WHERE name = 'Fred Smith'")).rowCount).toBe(0);
  expect(
    (
      await face.run(
        "UPDATE tenantry_v.customer SET city = 'Hacked' WHERE cust_num = 1 AND name = 'Fred Smith'",
      )
    ).rowCount,
  ).toBe(0);
  expect((await face.run("DELETE FROM customer WHERE name IN ('Fred Smith', 'Joan Adlon')")).rowCount).toBe(
    0,
  );
  await lowesIntact(f);
});

// proves: the tenant column can be neither read, nor set on insert, nor changed (no move to another tenant)
attack('the tenant column is out of reach (42703)', ALL_FACES, fx, async (face, f) => {
  const lowes = f.id('Lowes');
  for (const [sql, params] of [
    ['SELECT tenant_id FROM customer', []],
    ["INSERT INTO customer (tenant_id, name) VALUES ($1, 'Mallory')", [lowes]],
    ['UPDATE tenantry_v."order" SET tenant_id = $1', [lowes]],
  ] as const) {
    expect(await attempt(face, sql, [...params]), sql).toMatchObject({ sqlstate: '42703' });
  }
  await lowesIntact(f);
});

// proves: an empty, NULL or malformed tenant setting fails closed (no rows, or for the app role an
// error when it is not an integer); tenant roles ignore the setting
attack('empty, NULL and malformed tenant settings fail closed', ALL_FACES, fx, async (face) => {
  for (const value of ['', null, '   ', 'Lowes', '2 OR true', '1e3', '-0']) {
    const outcome = await attempt(
      face,
      "SELECT (SELECT set_config('tenantry.tenant', $1::text, true)) AS s, (SELECT count(*) FROM customer)::int AS n",
      [value],
    );
    // the second wall (gateway, HTTP) refuses set_config of tenantry.* outright
    if (face.name === 'gateway' || face.name === 'http') expect(outcome).toMatchObject({ sqlstate: '42501' });
    // the app role reads the setting without a regular expression (catalog version 26): text
    // that is not an integer fails the statement (22P02) instead of matching no row
    else if (face.name === 'lib-app' && value !== null && !/^\s*-?\d+\s*$/.test(value) && value !== '')
      expect(outcome, JSON.stringify(value)).toMatchObject({ sqlstate: '22P02' });
    else
      expect('rows' in outcome ? outcome.rows[0]?.n : outcome, JSON.stringify(value)).toBe(
        face.name === 'lib-app' ? 0 : 3,
      );
  }
  if (LIBRARY_FACES.includes(face.name)) {
    for (const ref of ['', '   ', null, undefined, 'lowes ', 0.5]) {
      const refused = await fx()
        .tenantry.withTenant(ref as never, async () => 'ran')
        .catch((e: unknown) => e);
      expect(refused, String(ref)).not.toBe('ran');
    }
  }
});

// proves: tenant SQL cannot change its tenant with settings, RESET ALL or DISCARD ALL
attack('settings cannot switch a tenant role to another tenant', TENANT_FACES, fx, async (face, f) => {
  const lowes = String(f.id('Lowes'));
  const probe = 'tenantry.tenant_name() AS t, (SELECT count(*) FROM customer)::int AS n';
  const statements: [string, unknown[]][] = [
    [`SELECT set_config('tenantry.tenant', '${lowes}', false), ${probe}`, []],
    [
      `SELECT set_config($1::text, $2::text, false), set_config('tenantry.effective', $2::text, false), ${probe}`,
      ['tenantry.tenant', lowes],
    ],
  ];
  if (face.name !== 'http') {
    statements.push([`SET tenantry.tenant = '${lowes}'; SELECT ${probe}`, []]);
    statements.push([`RESET ALL; SELECT ${probe}`, []]);
    statements.push([`DISCARD ALL; SELECT ${probe}`, []]);
  }
  for (const [sql, params] of statements) {
    const outcome = await attempt(face, sql, params);
    if ('rows' in outcome) expect(outcome.rows.at(-1), sql).toMatchObject({ t: 'HomeDepot', n: 3 });
    else expect(['42501', '25001'], `${sql}: ${outcome.message}`).toContain(outcome.sqlstate);
  }
  await stillHomeDepot(face);
});

// proves: no face can become tenantry's roles or another tenant's role
attack('SET ROLE / SESSION AUTHORIZATION / set_config(role) are refused', ALL_FACES, fx, async (face, f) => {
  const lowes = (await f.tenantry.resolveTenant('Lowes')).role!;
  const { app, owner, maint, tenants } = f.tenantry.roles;
  for (const sql of [
    `SET ROLE ${lowes}`,
    `SET ROLE ${maint}`,
    `SET ROLE ${owner}`,
    ...(face.name === 'lib-app' ? [`SET ROLE ${tenants}`] : [`SET ROLE ${app}`]),
    `SET SESSION AUTHORIZATION ${lowes}`,
    `SELECT set_config('role', '${lowes}', false)`,
  ]) {
    expect(await attempt(face, sql), sql).toMatchObject({ sqlstate: '42501' });
  }
  await stillHomeDepot(face);
});

// proves: only a super tenant may take an effective tenant; regular tenants get 42501 everywhere
attack('a regular tenant cannot set an effective tenant', ALL_FACES, fx, async (face, f) => {
  expect(await attempt(face, "SELECT tenantry.set_effective_tenant('Lowes')")).toMatchObject({
    sqlstate: '42501',
  });
  expect(
    await attempt(face, 'SELECT tenantry.set_effective_tenant($1)', [String(f.id('Lowes'))]),
  ).toMatchObject({
    sqlstate: '42501',
  });
  if (face.name === 'gateway') {
    const refused = await f.gw
      .connect('alice@HomeDepot', 'demo', { options: '-c tenantry.tenant=Lowes' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: '42501' });
  }
  await stillHomeDepot(face);
});

// proves: non-leakproof functions in WHERE run only on the caller's rows (errors never carry others' values)
attack('leaky built-ins in WHERE never see other tenants’ rows', ALL_FACES, fx, async (face) => {
  const cast = await attempt(face, 'SELECT name FROM customer WHERE name::integer > 0');
  expect(cast).toMatchObject({ sqlstate: '22P02' });
  for (const name of LOWES_CUSTOMERS) expect((cast as { message: string }).message).not.toContain(name);
  const trap =
    "SELECT count(*)::int AS n FROM tenantry_v.customer WHERE 1 / (CASE WHEN name = 'Fred Smith' THEN 0 ELSE 1 END) = 1";
  expect((await face.run(trap)).rows).toEqual([{ n: 3 }]);
  const regex = await attempt(
    face,
    "SELECT 1 FROM customer WHERE name ~ (CASE WHEN name LIKE 'Fred%' THEN '(' ELSE 'x' END)",
  );
  expect('rows' in regex).toBe(true);
});

// proves: a partitioned multi-tenant table filters by tenant, and its partitions cannot be read directly
attack(
  'partitions: the parent shows only own rows, partitions are out of reach',
  ALL_FACES,
  fx,
  async (face) => {
    expect(column((await face.run('SELECT what FROM event')).rows, 'what')).toEqual(['hd-event']);
    for (const partition of ['public.event_0', 'public.event_1']) {
      expect(await attempt(face, `SELECT what FROM ${partition}`), partition).toMatchObject({
        sqlstate: '42501',
      });
    }
    expect(await attempt(face, "INSERT INTO event (id, what) VALUES (2, 'x') RETURNING what")).toMatchObject({
      rows: [{ what: 'x' }],
    });
    expect(column((await face.run('DELETE FROM event WHERE id = 2 RETURNING what')).rows, 'what')).toEqual([
      'x',
    ]);
  },
);
