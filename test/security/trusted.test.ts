import { expect } from 'vitest';
import {
  HOME_DEPOT_CUSTOMERS,
  TENANT_FACES,
  attack,
  attempt,
  column,
  useFixture,
  type Face,
  type SecurityFixture,
} from './harness.js';

// Code a tenant writes: routines (refused), views and defaults (also read by trusted code under the
// application role, whose tenant is a transaction-local setting a tenant must not be able to turn),
// leaky functions in WHERE, and objects shadowing tenantry's names.
const fx = useFixture('sec_trusted');
const admin = 'admin@HomeDepot' as const;

/** Trusted code of HomeDepot reads `object` (a tenant's own object), then its customers, in one transaction. */
async function trustedReadsAfter(f: SecurityFixture, touch: string): Promise<string[]> {
  return f.tenantry.withTenant('HomeDepot', (db) =>
    db.transaction(async (tx) => {
      await tx.query(touch);
      return column((await tx.query('SELECT name FROM customer')).rows, 'name');
    }),
  );
}

/** Plants `sql` as HomeDepot's admin through `face`; answers whether PostgreSQL (or the gateway) accepted it. */
async function plant(face: Face, sql: string): Promise<boolean> {
  const outcome = await attempt(face, sql, undefined, admin);
  return 'rows' in outcome;
}

/** Statements that create routines (every kind tenants are refused). */
const ROUTINES = [
  'CREATE FUNCTION probe_routine(text) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$',
  'CREATE PROCEDURE probe_proc() LANGUAGE sql AS $$ SELECT 1 $$',
  'CREATE OPERATOR <<< (FUNCTION = texteq, LEFTARG = text, RIGHTARG = text)',
  'CREATE AGGREGATE probe_agg (text) (SFUNC = textcat, STYPE = text)',
  'CREATE CAST (text AS point) WITH INOUT',
];

const SWITCH = (f: SecurityFixture) => `set_config(concat('tenantry.', 'tenant'), '${f.id('Lowes')}', true)`;

// proves: a tenant's view cannot call set_config to switch trusted code that reads it to another tenant
// (found by this suite: the guard looked in pg_depend, which never records built-in functions)
attack('a tenant’s view cannot switch trusted code to another tenant', TENANT_FACES, fx, async (face, f) => {
  const view = `switch_${face.name.replace('-', '_')}`;
  const planted = await plant(face, `CREATE VIEW ${view} AS SELECT ${SWITCH(f)} AS x`);
  try {
    const seen = planted ? await trustedReadsAfter(f, `SELECT * FROM ${view}`) : HOME_DEPOT_CUSTOMERS;
    expect(seen).toEqual(HOME_DEPOT_CUSTOMERS);
    expect(planted).toBe(false);
  } finally {
    await f.operator(`DROP VIEW IF EXISTS ${faceSchema(f)}.${view}`);
  }
});

// proves: a tenant's column default cannot run SQL text (query_to_xml) that switches trusted code writing its table
attack('a tenant’s default cannot run SQL text in trusted sessions', TENANT_FACES, fx, async (face, f) => {
  const table = `notes_${face.name.replace('-', '_')}`;
  const text = `select set_config(''tenantry.tenant'', ''${f.id('Lowes')}'', true)`;
  const planted = await plant(
    face,
    `CREATE TABLE ${table} (id integer, x text DEFAULT (query_to_xml('${text}', false, false, ''))::text)`,
  );
  try {
    const seen = planted
      ? await trustedReadsAfter(f, `INSERT INTO ${table} (id) VALUES (1)`)
      : HOME_DEPOT_CUSTOMERS;
    expect(seen).toEqual(HOME_DEPOT_CUSTOMERS);
  } finally {
    await f.operator(`DROP TABLE IF EXISTS ${faceSchema(f)}.${table}`);
  }
});

// proves: a tenant's view over tenantry.scan_tenants cannot hand other tenants' rows to trusted code (HTTP /v1/internal/users)
attack(
  'a tenant’s view cannot make trusted code read other tenants’ rows',
  TENANT_FACES,
  fx,
  async (face, f) => {
    const planted = await plant(
      face,
      `CREATE VIEW users AS SELECT id, name, created_at FROM tenantry.scan_tenants(ARRAY[${f.id('Lowes')}], ARRAY['tenantry_v'],
         ARRAY[false], 'SELECT id, name, created_at FROM users', false, 'tenantry.scan_x')
         AS t(tid integer, id uuid, name text, created_at timestamptz)`,
    );
    try {
      const response = await f.http.inject({
        method: 'GET',
        url: '/v1/internal/users',
        headers: { authorization: `Bearer ${f.tokens['alice@HomeDepot']}`, 'x-tenant-id': 'HomeDepot' },
      });
      const names = response.statusCode === 200 ? column(response.json<{ name: string }[]>(), 'name') : [];
      expect(names).not.toContain('Lou Blue');
      expect(planted).toBe(false);
    } finally {
      await f.operator(`DROP VIEW IF EXISTS ${faceSchema(f)}.users`);
    }
  },
);

// proves: tenant views follow Phoenix's rules: only multi-tenant tables and own objects, made security_invoker
attack(
  'tenant views read only what the tenant may read, with its own rights',
  TENANT_FACES,
  fx,
  async (face) => {
    for (const sql of [
      'CREATE VIEW base_peek AS SELECT * FROM public.customer',
      'CREATE VIEW stats_peek AS SELECT tablename, attname FROM pg_catalog.pg_stats',
      'CREATE VIEW catalog_peek AS SELECT * FROM tenantry.tenant',
    ]) {
      const outcome = await attempt(face, sql, undefined, admin);
      expect(['42501', '42809'], `${sql}: ${JSON.stringify(outcome)}`).toContain(
        (outcome as { sqlstate?: string }).sqlstate,
      );
    }
    const view = `ga_${face.name.replace('-', '_')}`;
    await face.run(`CREATE VIEW ${view} AS SELECT name FROM customer WHERE state = 'GA'`, undefined, admin);
    const { rows } = await face.run(
      `SELECT array_to_string(reloptions, ',') AS o, (SELECT count(*)::int FROM ${view}) AS n FROM pg_class WHERE relname = '${view}'`,
      undefined,
      admin,
    );
    expect(rows[0]).toEqual({ o: 'security_invoker=true', n: 2 });
    await face.run(`DROP VIEW ${view}`, undefined, admin);
  },
);

// proves: the gateway's second wall refuses a literal set_config of tenantry.* even inside DDL
attack(
  'gateway: a literal set_config of the tenant setting is refused, even in DDL',
  ['gateway'],
  fx,
  async (face, f) => {
    expect(
      await attempt(
        face,
        `CREATE VIEW literal_switch AS SELECT set_config('tenantry.tenant', '${f.id('Lowes')}', true)`,
        undefined,
        admin,
      ),
    ).toMatchObject({ sqlstate: '42501' });
  },
);

// proves: users without the admin permission create no routine at all (the DDL guard of read and write users)
attack(
  'write users cannot create functions, operators, aggregates or casts',
  TENANT_FACES,
  fx,
  async (face) => {
    for (const sql of ROUTINES) {
      expect(await attempt(face, sql), sql).toMatchObject({ sqlstate: '42501' });
    }
  },
);

// proves: a tenant admin creates no routine either (docs/rights.md, migration 017: their code would run in trusted sessions)
// (found by this suite: the SECURITY DEFINER guard compared current_user, always its superuser owner)
attack(
  'tenant admins cannot create functions, operators, aggregates or casts',
  TENANT_FACES,
  fx,
  async (face) => {
    const admin = 'admin@HomeDepot' as const;
    const outcomes = [];
    for (const sql of ROUTINES) outcomes.push(await attempt(face, sql, undefined, admin));
    for (const drop of [
      'DROP OPERATOR IF EXISTS <<< (text, text)',
      'DROP FUNCTION IF EXISTS probe_routine(text)',
      'DROP PROCEDURE IF EXISTS probe_proc()',
      'DROP AGGREGATE IF EXISTS probe_agg(text)',
      'DROP CAST IF EXISTS (text AS point)',
    ])
      await attempt(face, drop, undefined, admin);
    outcomes.forEach((outcome, i) => expect(outcome, ROUTINES[i]).toMatchObject({ sqlstate: '42501' }));
  },
);

// proves: even a function or operator a tenant managed to create runs only on its own rows in WHERE (security barrier)
attack(
  'a tenant-defined leaky function or operator in WHERE never sees other tenants’ rows',
  TENANT_FACES,
  fx,
  async (face) => {
    const admin = 'admin@HomeDepot' as const;
    const created = await attempt(
      face,
      `CREATE FUNCTION probe_routine(text) RETURNS boolean LANGUAGE plpgsql COST 0.000001 AS $$
     BEGIN IF $1 IN ('Fred Smith', 'Joan Adlon', 'George Holmes') THEN RAISE EXCEPTION 'saw %', $1; END IF; RETURN true; END $$`,
      undefined,
      admin,
    );
    if (!('rows' in created)) {
      expect(created).toMatchObject({ sqlstate: '42501' });
      return;
    }
    try {
      expect(
        (
          await face.run(
            'SELECT count(*)::int AS n FROM customer WHERE probe_routine(name)',
            undefined,
            admin,
          )
        ).rows,
      ).toEqual([{ n: 3 }]);
      const op = await attempt(
        face,
        'CREATE OPERATOR ~~~ (FUNCTION = probe_routine, RIGHTARG = text)',
        undefined,
        admin,
      );
      if ('rows' in op) {
        expect(
          (
            await face.run(
              'SELECT count(*)::int AS n FROM tenantry_v.customer WHERE ~~~ name',
              undefined,
              admin,
            )
          ).rows,
        ).toEqual([{ n: 3 }]);
      }
    } finally {
      await attempt(face, 'DROP FUNCTION probe_routine(text) CASCADE', undefined, admin);
    }
  },
);

// proves: a tenant's own objects and search_path cannot shadow tenantry's functions or other sessions
attack('search_path shadowing changes nothing tenantry relies on', TENANT_FACES, fx, async (face) => {
  const admin = 'admin@HomeDepot' as const;
  await face.run('CREATE TABLE IF NOT EXISTS tenant (id integer, name text)', undefined, admin);
  await face.run('CREATE OR REPLACE VIEW current_tenant AS SELECT 2 AS current_tenant', undefined, admin);
  const shadowed = await face.run(
    "SELECT set_config('search_path', 'pg_temp, public', true), tenantry.tenant_name() AS t, tenantry.current_tenant() = tenantry.tenant_id() AS same, (SELECT count(*) FROM tenantry_v.customer)::int AS n",
    undefined,
    admin,
  );
  expect(shadowed.rows[0]).toMatchObject({ t: 'HomeDepot', same: true, n: 3 });
  // pg_temp comes last on a tenant's search_path: a temporary table never shadows the view
  if (face.name !== 'http') {
    const own = await face.run(
      "CREATE TEMP TABLE customer AS SELECT 'shadow'::text AS name; SELECT name FROM customer",
      undefined,
      admin,
    );
    expect(column(own.rows, 'name')).toEqual(HOME_DEPOT_CUSTOMERS);
  } else {
    await face.run("CREATE TEMP TABLE customer AS SELECT 'shadow'::text AS name", undefined, admin);
  }
  const next =
    face.name === 'gateway'
      ? await (await fx().session(admin)).query('SELECT name FROM customer')
      : await face.run('SELECT name FROM customer', undefined, admin);
  expect(column(next.rows, 'name')).toEqual(HOME_DEPOT_CUSTOMERS);
  await face.run('DROP VIEW current_tenant', undefined, admin);
  await face.run('DROP TABLE tenant', undefined, admin);
});

/** HomeDepot's own schema (`tenantry_f_<uuid>`). */
const faceSchema = (f: SecurityFixture) =>
  `tenantry_f_${f.tenantry.catalog.get('HomeDepot')!.uuid.replace(/-/g, '')}`;
