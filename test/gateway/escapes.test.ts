import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';

let fx: GatewayFixture;
let alice: pg.Client;

beforeAll(async () => {
  fx = await gatewayFixture('gw_escapes');
  alice = await fx.connect('alice@HomeDepot');
});
afterAll(async () => {
  await fx.close();
});

/** Alice still acts for HomeDepot and sees only its rows. */
async function stillHomeDepot(client: pg.Client = alice): Promise<void> {
  const { rows } = await client.query<{ t: string; n: number; u: string }>(
    'select tenantry.tenant_name() as t, (select count(*)::int from customer) as n, current_user as u',
  );
  expect(rows[0]).toMatchObject({ t: 'HomeDepot', n: 3 });
  expect(rows[0]?.u).toMatch(/^tenantry_t_/);
}

/** Escapes every tenant session may try; each must fail with 42501 (or be refused at login). */
const ESCAPES: readonly (readonly [string, string])[] = [
  ['SET ROLE', 'set role postgres'],
  ['SET ROLE to the tenants group', 'set role tenantry_t_group_does_not_matter'],
  ['RESET ROLE', 'reset role'],
  ['SET SESSION AUTHORIZATION', 'set session authorization postgres'],
  ['set_config(role)', "select set_config('role', 'postgres', false)"],
  ['SET tenantry.tenant', "set tenantry.tenant = '2'"],
  ['SET LOCAL tenantry.tenant', "begin; set local tenantry.tenant = '2'; commit"],
  ['SET "tenantry.effective"', 'set "tenantry.effective" = \'2\''],
  ['set_config(tenantry.tenant)', "select set_config('tenantry.tenant', '2', false)"],
  ['RESET ALL', 'reset all'],
  ['DISCARD ALL', 'discard all'],
  ['COPY … PROGRAM', "copy (select 1) to program 'id'"],
  ['LISTEN', 'listen tenantry_catalog'],
  ['NOTIFY', "notify tenantry_catalog, 'x'"],
  ['pg_notify', "select pg_notify('tenantry_catalog', 'x')"],
  ['advisory lock', 'select pg_advisory_lock(1)'],
  ['try advisory lock', 'select pg_try_advisory_xact_lock(42)'],
  ['ALTER SYSTEM', "alter system set work_mem = '1GB'"],
  ['LOAD', "load 'auto_explain'"],
  ['EXPLAIN (estimates come from every tenant’s rows)', 'explain select * from customer'],
  ['LOCK TABLE (locks every tenant’s rows)', 'lock table customer in access exclusive mode'],
  ['hidden in a comment-free multi-statement', 'select 1; /* x */ SET  ROLE postgres'],
  ['after a -- comment ended by a carriage return', 'select 1; --\rlisten tenantry_catalog'],
  ['after a dollar quote whose tag has a digit', "select $q1$'$q1$; lock table customer in share mode; --'"],
  ['ALTER a shared table', 'alter table state add column x int'],
  ['DROP a shared table', 'drop view state'],
  ['DROP a base table', 'drop table public.state'],
  ['DROP a tenant-facing view', 'drop view tenantry_v.customer'],
  ['DROP tenantry function', 'drop function tenantry.tenant_name()'],
  ['ALTER tenantry function', 'alter function tenantry.current_tenant() owner to current_user'],
  [
    'replace tenantry function',
    'create or replace function tenantry.tenant_name() returns text language sql as $$ select 1::text $$',
  ],
  ['TRUNCATE a multi-tenant table', 'truncate public.customer'],
];

describe('no escape through the gateway (SQLSTATE 42501)', () => {
  for (const [what, sql] of ESCAPES) {
    it(what, async () => {
      const error = await alice.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, sql).toBeInstanceOf(pg.DatabaseError);
      expect((error as pg.DatabaseError).code, `${sql}: ${(error as Error).message}`).toBe('42501');
      await alice.query('rollback').catch(() => undefined);
      await stillHomeDepot();
    });
  }

  it('the extended protocol is checked too', async () => {
    await expect(
      alice.query('select set_config($1, $2, false)', ['tenantry.tenant', '2']),
    ).resolves.toBeDefined();
    await stillHomeDepot();
    await expect(
      alice.query({ name: 'esc', text: 'select pg_advisory_lock($1)', values: [1] }),
    ).rejects.toMatchObject({
      code: '42501',
    });
    await stillHomeDepot();
  });

  it('a dynamic set_config of the tenant setting is harmless: the tenant comes from the login role', async () => {
    const other = fx.tenantry.catalog.get('Lowes');
    await alice.query('select set_config($1, $2, false)', ['tenantry.tenant', String(other?.id)]);
    await alice.query("do $$ begin perform set_config(format('%s.tenant', 'tenantry'), '2', false); end $$");
    await stillHomeDepot();
  });

  it('GRANT on a shared object grants nothing', async () => {
    const before = await fx.tenantry.operator.query(
      "select relacl::text from pg_class where oid = 'tenantry_v.state'::regclass",
    );
    const admin = await fx.connect('admin@HomeDepot');
    await admin.query('grant all on state to public');
    // A user without the admin permission may not even try (DDL is refused).
    await expect(alice.query('grant all on state to public')).rejects.toMatchObject({ code: '42501' });
    const after = await fx.tenantry.operator.query(
      "select relacl::text from pg_class where oid = 'tenantry_v.state'::regclass",
    );
    expect(after.rows).toEqual(before.rows);
  });

  it('pg_stat_activity reveals no other tenant’s statements', async () => {
    const fred = await fx.connect('fred@Lowes');
    const sleeping = fred.query("select pg_sleep(0.8), 'lowes-secret-marker'");
    await new Promise((r) => setTimeout(r, 200));
    const { rows } = await alice
      .query<{ query: string | null }>('select query from pg_stat_activity')
      .catch((error: pg.DatabaseError) => {
        expect(error.code).toBe('42501');
        return { rows: [] as { query: string | null }[] };
      });
    expect(rows.some((r) => r.query?.includes('lowes-secret-marker'))).toBe(false);
    await sleeping;
  });

  it('a statement refused inside a transaction leaves the session usable', async () => {
    await alice.query('begin');
    await expect(alice.query('set role postgres')).rejects.toMatchObject({ code: '42501' });
    await alice.query('commit');
    await stillHomeDepot();
  });
});

describe('code a tenant writes cannot switch trusted sessions to another tenant', () => {
  // The library path (identity 'tenant') sends the SQL straight to PostgreSQL: no gateway check,
  // so these prove the first wall.
  const asAdmin = (sql: string) =>
    fx.tenantry.withTenant('HomeDepot', (db) => db.query(sql), { identity: 'tenant', permission: 'admin' });

  it('tenants create no routines, and no view, default, check or index of theirs may call set_config', async () => {
    await expect(
      asAdmin('create function plain() returns int language sql as $$ select 1 $$'),
    ).rejects.toMatchObject({
      sqlstate: '42501',
    });
    for (const sql of [
      "create view sneaky_view as select set_config('tenantry.tenant', '2', true) as x",
      "create view sneaky_view2 as select pg_catalog.set_config(format('%s.tenant', 'tenantry'), '2', true) as x",
      "create table sneaky_table (x text default set_config('tenantry.tenant', '2', true))",
      "create table sneaky_check (x text check (set_config('tenantry.tenant', x, true) is not null))",
    ]) {
      await expect(asAdmin(sql), sql).rejects.toMatchObject({ sqlstate: '42501' });
    }
    await asAdmin('create table harmless (x text)');
    await expect(
      asAdmin("alter table harmless alter column x set default set_config('tenantry.tenant', '2', true)"),
    ).rejects.toMatchObject({ sqlstate: '42501' });
    // Ordinary tenant views still work, for the tenant and for trusted code acting for it.
    const admin = await fx.connect('admin@HomeDepot');
    await admin.query("create view ga_customers as select * from customer where state = 'GA'");
    expect((await admin.query('select count(*)::int as n from ga_customers')).rows).toEqual([{ n: 2 }]);
    await fx.tenantry.withTenant('HomeDepot', async (db) => {
      await db.query('select * from ga_customers');
      const { rows } = await db.query<{ t: string }>('select tenantry.tenant_name() as t');
      expect(rows[0]?.t).toBe('HomeDepot');
    });
  });

  it('a tenant session cannot fake tenantry provisioning to skip the tenant-view rules', async () => {
    await expect(
      fx.tenantry.withTenant(
        'HomeDepot',
        (db) =>
          db.transaction(async (tx) => {
            await tx.query("select set_config('tenantry.provisioning', 'on', true)");
            await tx.query('create view all_states as select * from tenantry_v.state');
          }),
        { identity: 'tenant', permission: 'admin' },
      ),
    ).rejects.toMatchObject({ code: 'TENANTRY_ERR_TENANT_VIEW' });
  });
});

describe('tenant objects cannot smuggle SQL text or privileged functions into trusted sessions', () => {
  const asAdmin = (sql: string) =>
    fx.tenantry.withTenant('HomeDepot', (db) => db.query(sql), { identity: 'tenant', permission: 'admin' });

  it('refuses query_to_xml and friends, tenantry.scan_tenants and domain checks that call them', async () => {
    for (const sql of [
      "create table q1 (id int, x text default (query_to_xml('select 1', false, false, ''))::text)",
      "create view q2 as select * from ts_stat('select 1')",
      'create view q3 as select * from tenantry.scan_tenants(array[1], array[$$tenantry_v$$], array[false], $$select 1$$, false, $$x$$) as t(a int)',
      "create domain q4 as text check (set_config('tenantry.tenant', value, true) is not null)",
    ]) {
      await expect(asAdmin(sql), sql).rejects.toMatchObject({
        sqlstate: expect.stringMatching(/^(42501|42883|42P13)$/) as unknown,
      });
    }
  });

  it('a stale transaction handle cannot run after its transaction', async () => {
    let stale: { query(sql: string): Promise<unknown> } | undefined;
    await fx.tenantry.withTenant('Lowes', (db) =>
      db.transaction(async (tx) => {
        stale = tx;
        await tx.query('select 1');
      }),
    );
    await expect(stale?.query('select name from customer')).rejects.toMatchObject({
      code: 'TENANTRY_ERR_CLOSED',
    });
  });
});
