import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError, type Permission, type Tenantry } from '../src/index.js';
import { withClient } from './helpers/db.js';
import { storeFixture } from './helpers/fixtures.js';

const HOME_DEPOT = 'Albert Hall,Candace Jones,Carrie Abrahm';

/** The SQLSTATE a statement failed with (a TenantryError's, else PostgreSQL's); undefined on success. */
async function stateOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    const e = error as { sqlstate?: string; code?: string };
    return e.sqlstate ?? e.code ?? 'error';
  }
}

/** Who a session acts for and which customers it sees. */
const PROBE = `SELECT tenantry.tenant_name() AS tenant, session_user::text AS who,
  (SELECT string_agg(name, ',' ORDER BY name) FROM customer) AS rows`;

interface Probe {
  tenant: string | null;
  who: string;
  rows: string | null;
}

/** Opens one session as `tenant`'s login role for `permission`, through the gateway's route. */
async function session<T>(
  tenantry: Tenantry,
  tenant: string,
  permission: Permission,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const route = tenantry.tenantRoute(await tenantry.resolveTenant(tenant), permission);
  const client = new pg.Client(await route.target.connect());
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function probe(client: pg.Client): Promise<Probe> {
  return (await client.query<Probe>(PROBE)).rows[0]!;
}

async function serverVersion(client: pg.ClientBase): Promise<number> {
  return Number((await client.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v);
}

describe('the first wall: what a tenant login role cannot do, whatever SQL it sends', () => {
  let tenantry: Tenantry;
  let url: string;
  let lowes: { id: number; role: string };
  let mine: Probe;

  beforeAll(async () => {
    ({ tenantry, url } = await storeFixture('rights_wall', { loginRole: true }));
    const t = await tenantry.resolveTenant('Lowes');
    lowes = { id: t.id, role: t.role! };
    mine = await session(tenantry, 'HomeDepot', 'admin', probe);
    expect(mine).toMatchObject({ tenant: 'HomeDepot', rows: HOME_DEPOT });
  });
  afterAll(async () => {
    await tenantry?.close();
  });

  /** Runs each statement in one session; each must fail with 42501 or leave the tenant as it was. */
  async function unchangedAfter(statements: string[], mustFail: (sql: string) => boolean): Promise<void> {
    await session(tenantry, 'HomeDepot', 'admin', async (client) => {
      for (const sql of statements) {
        const state = await stateOf(client.query(sql));
        if (mustFail(sql)) expect(state, sql).toBe('42501');
        else expect(state === undefined || state === '42501', `${sql}: ${state}`).toBe(true);
        expect(await probe(client), sql).toEqual(mine);
      }
    });
  }

  it('cannot become another role: SET ROLE, set_config(role), SET SESSION AUTHORIZATION', async () => {
    const newer = (await withClient(url, serverVersion)) >= 160000;
    const { tenants, global, app } = tenantry.roles;
    await unchangedAfter(
      [
        `SET ROLE ${tenants}`,
        `SET ROLE ${global}`,
        `SET ROLE ${lowes.role}`,
        `SET ROLE ${app}`,
        `SELECT set_config('role', '${lowes.role}', false)`,
        `SELECT set_config('role', '${tenants}', false)`,
        `SET SESSION AUTHORIZATION ${lowes.role}`,
        'SET SESSION AUTHORIZATION DEFAULT',
        'RESET ROLE',
        'SET ROLE NONE',
      ],
      // PostgreSQL 16+: memberships in the groups are granted SET FALSE
      (sql) =>
        sql.includes(lowes.role) ||
        sql.includes(app) ||
        (newer && (sql.includes(tenants) || sql.includes(global))),
    );
  });

  it('ignores the tenant settings, RESET ALL and DISCARD ALL', async () => {
    await unchangedAfter(
      [
        `SET tenantry.tenant = '${lowes.id}'`,
        `SELECT set_config('tenantry.tenant', '${lowes.id}', false)`,
        `SET tenantry.effective = '${lowes.id}'`,
        `SELECT set_config('tenantry.effective', '${lowes.id}', false)`,
        "SET tenantry.super = '-1'",
        'RESET ALL',
        'DISCARD ALL',
      ],
      () => false,
    );
    // the same in one transaction, through the library's tenant identity
    const rows = await tenantry.withTenant(
      'HomeDepot',
      async (db) =>
        (
          await db.query<Probe>(
            `SELECT set_config('tenantry.tenant', '${lowes.id}', true), set_config('tenantry.effective', '${lowes.id}', true); ${PROBE}`,
          )
        ).rows[0],
      { identity: 'tenant' },
    );
    expect(rows).toEqual(mine);
  });

  it('cannot run programs, take advisory locks or notify', async () => {
    await unchangedAfter(
      [
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "COPY (SELECT 1) TO '/tmp/tenantry-rights'",
        'SELECT pg_advisory_lock(1)',
        'SELECT pg_advisory_lock_shared(1)',
        'SELECT pg_try_advisory_lock(1)',
        'SELECT pg_advisory_xact_lock(1)',
        'SELECT pg_try_advisory_xact_lock_shared(1, 2)',
        'SELECT pg_advisory_unlock_all()',
        "SELECT pg_notify('x', 'y')",
        "SELECT pg_notify('tenantry_catalog', 'tenant')",
      ],
      () => true,
    );
  });

  it('cannot see other sessions: pg_stat_activity and its kin', async () => {
    // another tenant is connected meanwhile
    await session(tenantry, 'Lowes', 'admin', async (other) => {
      await other.query('SELECT 1');
      await unchangedAfter(
        [
          'SELECT query FROM pg_stat_activity',
          'SELECT * FROM pg_stat_get_activity(NULL)',
          'SELECT pg_stat_get_backend_pid(s) FROM pg_stat_get_backend_idset() s',
          'SELECT * FROM pg_locks',
          'SELECT * FROM pg_stat_ssl',
          'SELECT * FROM pg_stat_progress_vacuum',
          'SELECT * FROM pg_prepared_xacts',
        ],
        () => true,
      );
    });
  });

  it('cannot read pg_stat_statements, created after the install', async () => {
    await withClient(url, (client) =>
      client.query(`CREATE SCHEMA mon; GRANT USAGE ON SCHEMA mon TO PUBLIC;
                    CREATE EXTENSION pg_stat_statements SCHEMA mon`),
    );
    await unchangedAfter(
      ['SELECT query FROM mon.pg_stat_statements', 'SELECT * FROM mon.pg_stat_statements(true)'],
      () => true,
    );
    const { rows } = await tenantry.operator.query<{ app: boolean; monitor: boolean }>(
      `SELECT has_table_privilege($1, 'mon.pg_stat_statements', 'SELECT') AS app,
              has_table_privilege('pg_read_all_stats', 'mon.pg_stat_statements', 'SELECT') AS monitor`,
      [tenantry.roles.app],
    );
    expect(rows[0]).toEqual({ app: true, monitor: true });
  });

  it('cannot change shared objects: catalog functions, tenant-facing views, base and global tables', async () => {
    await unchangedAfter(
      [
        'ALTER TABLE tenantry_v.customer RENAME TO c2',
        'ALTER VIEW tenantry_v.customer SET (security_invoker = false)',
        'DROP VIEW tenantry_v.customer',
        'DROP VIEW tenantry_v.state',
        'DROP TABLE public.customer',
        'ALTER TABLE public.customer ADD COLUMN x integer',
        'DROP TABLE public.state',
        'DROP FUNCTION tenantry.tenant_name()',
        'ALTER FUNCTION tenantry.tenant_name() SECURITY INVOKER',
        'ALTER FUNCTION tenantry.current_tenant() OWNER TO CURRENT_USER',
        "CREATE OR REPLACE FUNCTION tenantry.tenant_name() RETURNS text LANGUAGE sql AS $$ SELECT 'Lowes'::text $$",
        'CREATE FUNCTION tenantry.evil() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$',
        'DROP TABLE tenantry.tenant_role',
        'DROP EVENT TRIGGER tenantry_rights_ddl',
      ],
      () => true,
    );
  });

  it('cannot create functions at all (so none can shadow tenantry.tenant_name() or run in trusted sessions)', async () => {
    await session(tenantry, 'HomeDepot', 'admin', async (client) => {
      for (const sql of [
        "CREATE FUNCTION tenant_name() RETURNS text LANGUAGE sql AS $$ SELECT 'Lowes'::text $$",
        `CREATE FUNCTION current_tenant() RETURNS integer LANGUAGE sql AS $$ SELECT ${lowes.id} $$`,
        'CREATE PROCEDURE p() LANGUAGE sql AS $$ SELECT 1 $$',
      ]) {
        await expect(client.query(sql)).rejects.toMatchObject({ code: '42501' });
      }
      const { rows } = await client.query<{ real: string }>('SELECT tenantry.tenant_name() AS real');
      expect(rows[0]).toEqual({ real: 'HomeDepot' });
      expect(await probe(client)).toEqual(mine);
    });
  });

  it('tenantry itself keeps its advisory locks, NOTIFY and session views', async () => {
    await tenantry.operator.query('SELECT pg_advisory_xact_lock(42)');
    const n = await tenantry.withTenant('HomeDepot', async (db) => {
      await db.query('SELECT pg_advisory_xact_lock(43)');
      return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity')).rows[0]!.n;
    });
    expect(n).toBeGreaterThan(0);
    // the catalog's triggers still NOTIFY, so a new tenant reaches the cache
    await tenantry.operator.query(
      "INSERT INTO tenantry.tenant (id, name, kind) VALUES (900, 'Notified', 'regular')",
    );
    await expect.poll(() => tenantry.catalog.get(900)?.name, { timeout: 5_000 }).toBe('Notified');
  });
});

describe.each(['shared', 'schema', 'database'] as const)('rights inside a %s tenant', (isolation) => {
  let tenantry: Tenantry;
  let url: string;
  const as = <T>(permission: Permission, fn: Parameters<Tenantry['withTenant']>[1]) =>
    tenantry.withTenant('HomeDepot', fn, { identity: 'tenant', permission }) as Promise<T>;
  const count = (permission: Permission, sql: string) =>
    as<number>(permission, async (db) => Number((await db.query<{ n: string }>(sql)).rows[0]!.n));

  beforeAll(async () => {
    ({ tenantry, url } = await storeFixture(`rights_${isolation}`, { isolation, loginRole: true }));
    await tenantry.sequences.create('ticket');
  });
  afterAll(async () => {
    await tenantry?.close();
  });

  it('a read user reads its own tenant’s rows, and every write fails in PostgreSQL with 42501', async () => {
    const rows = await as<Probe>('read', async (db) => (await db.query<Probe>(PROBE)).rows[0]);
    const tenant = await tenantry.resolveTenant('HomeDepot');
    expect(rows).toEqual({ tenant: 'HomeDepot', who: `${tenant.role}_r`, rows: HOME_DEPOT });
    for (const sql of [
      "UPDATE customer SET name = 'x'",
      "INSERT INTO customer (cust_num, name) VALUES (70, 'Reader')",
      'DELETE FROM customer',
      "INSERT INTO customer (cust_num, name) VALUES (1, 'x') ON CONFLICT DO NOTHING",
      "MERGE INTO customer c USING (SELECT 71 AS n) s ON c.cust_num = s.n WHEN NOT MATCHED THEN INSERT (cust_num, name) VALUES (s.n, 'M')",
    ]) {
      const error = await as('read', (db) => db.query(sql)).catch((e: unknown) => e);
      expect(
        (error as { sqlstate?: string; code?: string }).sqlstate ?? (error as { code?: string }).code,
        sql,
      ).toBe('42501');
    }
    expect(await stateOf(as('read', (db) => db.query("SELECT tenantry.next('ticket')")))).toBe('42501');
    expect(await count('write', "SELECT tenantry.next('ticket') AS n")).toBe(1);
    const forbidden = await as('read', (db) => db.query("UPDATE customer SET name = 'x'")).catch(
      (e: unknown) => e,
    );
    expect(isTenantryError(forbidden, 'FORBIDDEN')).toBe(true);
    expect(
      await count('admin', "SELECT count(*) AS n FROM customer WHERE name IN ('x', 'Reader', 'M')"),
    ).toBe(0);
  });

  it('a read or write user changes no schema object; a write user writes rows', async () => {
    for (const permission of ['read', 'write'] as const) {
      for (const sql of [
        'CREATE VIEW mine AS SELECT cust_num FROM customer',
        'CREATE TABLE notes (id integer PRIMARY KEY)',
        'CREATE TEMP TABLE scratch (id integer)',
        'CREATE FUNCTION f() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$',
      ]) {
        expect(await stateOf(as(permission, (db) => db.query(sql))), `${permission}: ${sql}`).toBe('42501');
      }
    }
    if (isolation !== 'database') {
      expect(
        await stateOf(
          as('write', (db) => db.query("SELECT tenantry.add_tenant_column('customer', 'vip', 'boolean')")),
        ),
      ).toBe('42501');
    }
    await as('write', async (db) => {
      await db.query("INSERT INTO customer (cust_num, name) VALUES (80, 'Written')");
      await db.query("UPDATE customer SET name = 'Rewritten' WHERE cust_num = 80");
    });
    expect(await count('read', "SELECT count(*) AS n FROM customer WHERE name = 'Rewritten'")).toBe(1);
    expect(await count('admin', 'SELECT count(*) AS n FROM customer')).toBe(4);
    await as('write', (db) => db.query('DELETE FROM customer WHERE cust_num = 80'));
  });

  it('an admin creates views and tables in its schema; read users cannot write those tables, however the admin tries', async () => {
    await as('admin', async (db) => {
      await db.query('CREATE VIEW ga AS SELECT cust_num, name FROM customer WHERE state = $$GA$$');
      await db.query('CREATE TABLE notes (id integer PRIMARY KEY, body text)');
      await db.query("INSERT INTO notes VALUES (1, 'by admin')");
    });
    expect(await count('read', 'SELECT count(*) AS n FROM ga')).toBe(2);
    expect(await count('read', 'SELECT count(*) AS n FROM notes')).toBe(1);
    await as('write', (db) => db.query("INSERT INTO notes VALUES (2, 'by writer')"));
    const readerWrites = () =>
      stateOf(as('read', (db) => db.query("INSERT INTO notes VALUES (3, 'by reader')")));
    expect(await readerWrites()).toBe('42501');
    // disabling the guard is undone at once; dropping it is refused
    await as('admin', (db) => db.query('ALTER TABLE notes DISABLE TRIGGER ALL'));
    expect(await readerWrites()).toBe('42501');
    expect(await stateOf(as('admin', (db) => db.query('DROP TRIGGER tenantry_guard_write ON notes')))).toBe(
      '42501',
    );
    expect(
      await stateOf(
        as('admin', (db) =>
          db.query(
            'CREATE TRIGGER mine BEFORE INSERT ON notes FOR EACH STATEMENT EXECUTE FUNCTION tenantry.guard_write()',
          ),
        ),
      ),
    ).toBe('42501');
    // Tenants cannot create trigger functions of their own, so the guard cannot be replaced by one.
    expect(
      await stateOf(
        as('admin', (db) =>
          db.query('CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$'),
        ),
      ),
    ).toBe('42501');
    await as('admin', (db) =>
      db.query(`ALTER TRIGGER tenantry_guard_write ON notes RENAME TO renamed;
                DROP TRIGGER renamed ON notes`),
    ).catch(() => undefined);
    expect(await stateOf(as('read', (db) => db.query('DELETE FROM notes')))).toBe('42501');
    expect(await stateOf(as('read', (db) => db.query('TRUNCATE notes')))).toBe('42501');
    // ... and a table created later, or as a partition, is guarded too
    await as('admin', (db) =>
      db.query(
        'CREATE TABLE log (at integer) PARTITION BY RANGE (at); CREATE TABLE log_1 PARTITION OF log FOR VALUES FROM (0) TO (10)',
      ),
    );
    expect(await stateOf(as('read', (db) => db.query('INSERT INTO log_1 VALUES (1)')))).toBe('42501');
    expect(await stateOf(as('read', (db) => db.query('INSERT INTO log VALUES (2)')))).toBe('42501');
    expect(await count('admin', 'SELECT count(*) AS n FROM notes')).toBe(2);
  });

  it('read and write users cannot SET ROLE to the admin role (PostgreSQL 16+), and stay in their tenant', async () => {
    const tenant = await tenantry.resolveTenant('HomeDepot');
    await session(tenantry, 'HomeDepot', 'read', async (client) => {
      const state = await stateOf(client.query(`SET ROLE ${tenant.role!}`));
      if ((await serverVersion(client)) >= 160000) expect(state).toBe('42501');
      expect(await stateOf(client.query("UPDATE customer SET name = 'x'"))).toBe('42501');
      expect(await probe(client)).toMatchObject({ tenant: 'HomeDepot', rows: HOME_DEPOT });
      expect((await client.query('SELECT tenantry.session_permission() AS p')).rows[0]).toEqual({
        p: 'read',
      });
    });
  });

  it('the first wall holds where its rows live (for a database tenant: its own database)', async () => {
    for (const permission of ['admin', 'read'] as const) {
      for (const sql of [
        'SELECT pg_advisory_lock(1)',
        "SELECT pg_notify('x', 'y')",
        'SELECT query FROM pg_stat_activity',
        'SELECT * FROM pg_locks',
        "COPY (SELECT 1) TO PROGRAM 'id'",
      ]) {
        expect(await stateOf(as(permission, (db) => db.query(sql))), `${permission}: ${sql}`).toBe('42501');
      }
    }
    // tenantry's application role keeps them
    await tenantry.withTenant('HomeDepot', (db) =>
      db.query('SELECT pg_advisory_xact_lock(1), (SELECT count(*) FROM pg_stat_activity)'),
    );
  });

  it('each permission is its own pool identity and login role, registered for the tenant', async () => {
    const tenant = await tenantry.resolveTenant('HomeDepot');
    expect(tenantry.tenantRoute(tenant).target.identity).toBe(`tenant:${tenant.id}`);
    expect(tenantry.tenantRoute(tenant, 'write').target.identity).toBe(`tenant:${tenant.id}:write`);
    expect(tenantry.tenantRoute(tenant, 'read').target.identity).toBe(`tenant:${tenant.id}:read`);
    expect(await tenantry.tenants.ensurePermissionRole('HomeDepot', 'read')).toBe(`${tenant.role!}_r`);
    const { rows } = await tenantry.operator.query<{ role_name: string; permission: string }>(
      'SELECT role_name, permission FROM tenantry.tenant_role WHERE tenant_id = $1 ORDER BY permission',
      [tenant.id],
    );
    expect(rows).toEqual([
      { role_name: tenant.role, permission: 'admin' },
      { role_name: `${tenant.role!}_r`, permission: 'read' },
      { role_name: `${tenant.role!}_w`, permission: 'write' },
    ]);
    await withClient(url, async (client) => {
      const { rows: attrs } = await client.query(
        `SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles
         WHERE rolname = ANY($1) ORDER BY rolname`,
        [[`${tenant.role!}_r`, `${tenant.role!}_w`]],
      );
      expect(
        attrs.map((r: { rolcanlogin: boolean; rolsuper: boolean; rolbypassrls: boolean }) => [
          r.rolcanlogin,
          r.rolsuper,
          r.rolbypassrls,
        ]),
      ).toEqual([
        [true, false, false],
        [true, false, false],
      ]);
    });
  });
});

describe('lifecycle of the permission roles', () => {
  let tenantry: Tenantry;
  let url: string;

  beforeAll(async () => {
    ({ tenantry, url } = await storeFixture('rights_lifecycle', { loginRole: true }));
  });
  afterAll(async () => {
    await tenantry?.close();
  });

  const canLogin = (roles: string[]) =>
    withClient(url, async (client) => {
      const { rows } = await client.query<{ rolname: string; rolcanlogin: boolean }>(
        'SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname',
        [roles],
      );
      return rows.map((r) => r.rolcanlogin);
    });

  it('disable, lock and enable switch every login role of the tenant; drop removes them and ends their sessions', async () => {
    const tenant = await tenantry.resolveTenant('Lowes');
    const roles = [tenant.role!, `${tenant.role!}_r`, `${tenant.role!}_w`];
    await tenantry.tenants.ensurePermissionRole('Lowes', 'read');
    await tenantry.tenants.ensurePermissionRole('Lowes', 'write');
    expect(await canLogin(roles)).toEqual([true, true, true]);
    await tenantry.tenants.disable('Lowes');
    expect(await canLogin(roles)).toEqual([false, false, false]);
    const refused = await tenantry
      .withTenant('Lowes', async () => 1, { identity: 'tenant', permission: 'read' })
      .catch((e: unknown) => e);
    expect(isTenantryError(refused, 'TENANT_DISABLED')).toBe(true);
    await tenantry.tenants.lock('Lowes');
    expect(await canLogin(roles)).toEqual([false, false, false]);
    await tenantry.tenants.enable('Lowes');
    expect(await canLogin(roles)).toEqual([true, true, true]);

    const client = new pg.Client(await tenantry.tenantRoute(tenant, 'read').target.connect());
    await client.connect();
    client.on('error', () => undefined);
    expect((await client.query<Probe>(PROBE)).rows[0]).toMatchObject({ tenant: 'Lowes' });
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await tenantry.tenants.drop('Lowes', { force: true });
    expect(await canLogin(roles)).toEqual([]);
    const alive = await withClient(url, (c) =>
      c.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]),
    );
    expect(alive.rowCount).toBe(0);
    expect(await stateOf(client.query('SELECT 1'))).not.toBeUndefined();
    await client.end().catch(() => undefined);
    const { rows } = await tenantry.operator.query('SELECT 1 FROM tenantry.credential WHERE owner = $1', [
      `tenant:${tenant.id}`,
    ]);
    expect(rows).toEqual([]);
  });

  it('a disabled tenant’s new permission role is created without LOGIN', async () => {
    await tenantry.tenants.disable('HomeDepot');
    const role = await tenantry.tenants.ensurePermissionRole('HomeDepot', 'write');
    expect(await canLogin([role])).toEqual([false]);
    await tenantry.tenants.enable('HomeDepot');
    expect(await canLogin([role])).toEqual([true]);
  });
});
