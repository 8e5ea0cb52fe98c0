import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError, type MoveProgress } from '../../src/index.js';
import { storeFixture, type Fixture } from '../helpers/fixtures.js';
import { withClient } from '../helpers/db.js';
import { customers, SteadyWriter } from './move-helpers.js';

let f: Fixture;

beforeAll(async () => {
  f = await storeFixture('move', { loginRole: true });
  await f.tenantry.tenants.create({ name: 'Acme', loginRole: true });
  await f.tenantry.withTenant('Acme', (db) =>
    db.query("INSERT INTO customer (cust_num, name) SELECT g, 'acme ' || g FROM generate_series(1, 500) g"),
  );
});
afterAll(async () => {
  await f?.tenantry.close();
});

const sql = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) =>
  withClient(f.url, async (c) => (await c.query<R>(text, values)).rows);

describe('online tenant move', () => {
  it('moves a shared tenant into its own database while it keeps writing: no write lost or doubled', async () => {
    const before = await customers(f.tenantry, 'Acme');
    const writer = new SteadyWriter(f.tenantry, 'Acme', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const phases = new Set<string>();
    const report = await f.tenantry.moves.move('Acme', {
      to: 'database',
      onProgress: (e: MoveProgress) => phases.add(e.phase),
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writer.stop();
    expect(writer.errors).toEqual([]);
    expect(writer.inserted.length).toBeGreaterThan(5);
    expect([...phases]).toEqual(
      expect.arrayContaining(['prepare', 'copy', 'catchup', 'cutover', 'cleanup', 'done']),
    );
    expect(report.rows).toBeGreaterThanOrEqual(500);
    expect(report.verifiedTables).toBeGreaterThan(0);
    expect(report.pauseMs).toBeGreaterThanOrEqual(0);

    const tenant = await f.tenantry.tenants.show('Acme');
    expect(tenant).toMatchObject({ isolation: 'database', server: 'main', placementEpoch: 1 });
    const after = await customers(f.tenantry, 'Acme');
    // exactly the rows before, plus every acknowledged insert that was not deleted again
    const expected = new Set([...before.keys(), ...writer.inserted]);
    expect(new Set(after.keys())).toEqual(expected);
    expect(after.get(1)).toBe(`${before.get(1)}${'+'.repeat(writer.updates)}`);
    // the old copy is gone: no Acme rows left in the shared table, no triggers, no move row
    expect(await sql('SELECT 1 FROM public.customer WHERE tenant_id = $1', [tenant.id])).toEqual([]);
    expect(await sql("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tenantry_move_%'")).toEqual([]);
    expect(await f.tenantry.moves.list()).toEqual([]);
  });

  it('keeps other tenants apart: nobody else sees or reaches the moved rows, before or after', async () => {
    expect([...(await customers(f.tenantry, 'HomeDepot')).values()]).toEqual([
      'Albert Hall',
      'Candace Jones',
      'Carrie Abrahm',
    ]);
    const seen = await f.tenantry.withTenant('Lowes', (db) =>
      db.query("SELECT count(*)::int AS n FROM customer WHERE name LIKE 'acme%' OR name LIKE 'writer%'"),
    );
    expect(seen.rows[0]).toEqual({ n: 0 });
    // the moved tenant's login role works on its new database and sees only its rows
    const own = await f.tenantry.withTenant(
      'Acme',
      (db) => db.query<{ n: number }>('SELECT count(*)::int AS n, tenantry.tenant_name() AS t FROM customer'),
      { identity: 'tenant' },
    );
    expect(own.rows[0]).toMatchObject({ t: 'Acme' });
    expect(own.rows[0]?.n).toBeGreaterThanOrEqual(500);
  });

  it('moves it back into the shared tables, login role and all', async () => {
    const before = await customers(f.tenantry, 'Acme');
    const report = await f.tenantry.moves.move('Acme', { to: 'shared' });
    expect(report.from).toMatchObject({ isolation: 'database' });
    const tenant = await f.tenantry.tenants.show('Acme');
    expect(tenant).toMatchObject({ isolation: 'shared', databaseName: null, placementEpoch: 2 });
    expect(await customers(f.tenantry, 'Acme')).toEqual(before);
    const viaRole = await f.tenantry.withTenant(
      'Acme',
      (db) => db.query<{ n: number }>('SELECT count(*)::int AS n FROM customer'),
      { identity: 'tenant' },
    );
    expect(viaRole.rows[0]?.n).toBe(before.size);
    expect(
      await sql('SELECT 1 FROM pg_database WHERE datname = $1', [
        `tenantry_t_${tenant.uuid.replace(/-/g, '')}`,
      ]),
    ).toEqual([]);
  });

  it('refuses a stale route: a process that missed the move cannot write to the old copy', async () => {
    const stale = await f.tenantry.tenants.show('Lowes');
    await f.tenantry.moves.move('Lowes', { to: 'database' });
    // a Tenant object from before the move routes by the old placement (as a process whose
    // notifications were lost would): the database refuses it
    const error = await f.tenantry
      .withTenant(stale, (db) => db.query("INSERT INTO customer (cust_num, name) VALUES (99, 'stale')"))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    // withTenant resolves the tenant from the catalog cache, which already saw the move;
    // the prelude check is what stops a really stale route — exercise it directly
    if (error !== undefined) expect(isTenantryError(error, 'TENANT_MOVED')).toBe(true);
    const row = await sql<{ n: number }>(
      "SELECT count(*)::int AS n FROM public.customer WHERE tenant_id = $1 AND name = 'stale'",
      [stale.id],
    );
    expect(row[0]?.n).toBe(0);
    expect(
      await withClient(f.url, async (c) => {
        await c.query(`SET ROLE ${f.tenantry.roles.app}`);
        return c
          .query(
            "SELECT set_config('tenantry.tenant', CASE WHEN EXISTS (SELECT 1 FROM tenantry.tenant WHERE id = $1 AND placement_epoch = 0) THEN $1::text ELSE tenantry.placement_moved($1) END, true)",
            [stale.id],
          )
          .then(
            () => 'ran',
            (e: { code?: string }) => e.code,
          );
      }),
    ).toBe('TN001');
  });

  it('validates its input and refuses what it cannot move', async () => {
    const codes = async (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: unknown) => (isTenantryError(e) ? e.code : String(e)),
      );
    expect(await codes(f.tenantry.moves.move('HomeDepot', { to: 'shared' }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codes(f.tenantry.moves.move('HomeDepot', { to: 'schema', server: 'second' }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codes(f.tenantry.moves.move('HomeDepot', { to: 'bogus' as 'shared' }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codes(f.tenantry.moves.move('HomeDepot', { to: 'database', server: 'nowhere' }))).toBe(
      'TENANTRY_ERR_SERVER_NOT_FOUND',
    );
    expect(await codes(f.tenantry.moves.move('Nobody', { to: 'database' }))).toBe(
      'TENANTRY_ERR_TENANT_NOT_FOUND',
    );
    expect(await codes(f.tenantry.moves.abort('HomeDepot'))).toBe('TENANTRY_ERR_MOVE_NOT_FOUND');
  });
});
