import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../../src/index.js';
import { createTestDatabase, withClient } from '../helpers/db.js';
import { createStoreTables } from '../helpers/fixtures.js';
import { ChildProcess } from '../runtime/child.js';
import { customers, SteadyWriter } from './move-helpers.js';

// A mover in another process kills itself (SIGKILL: no cleanup of any kind) at a chosen step;
// the tenant keeps writing throughout; a rerun (or an abort) must leave every acknowledged write
// in exactly one place.
const key = generateMasterKey();
let url: string;
let t: Tenantry;

const CHILD = `
const t = await lib.createTenantry({ databaseUrl: process.env.URL, masterKey: process.env.KEY });
const [phase, prefix] = process.env.KILL_AT.split(':');
await t.moves.move(process.env.TENANT, {
  to: 'database',
  cutoverBelow: 1000000,
  onProgress: (e) => {
    if (e.phase === phase && (phase !== 'copy' || e.rows >= 2000) && (e.message ?? '').startsWith(prefix ?? '')) {
      process.kill(process.pid, 'SIGKILL');
    }
  },
});
say({ finished: true });
`;

async function killedMove(tenant: string, at: string): Promise<void> {
  const child = new ChildProcess(CHILD, { URL: url, KEY: key, TENANT: tenant, KILL_AT: at });
  const code = await child.exited;
  expect(child.process.signalCode, child.stderr).toBe('SIGKILL');
  expect(code).toBeNull();
}

const sql = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) =>
  withClient(url, async (c) => (await c.query<R>(text, values)).rows);

beforeAll(async () => {
  url = await createTestDatabase('move_crash');
  t = await createTenantry({ databaseUrl: url, masterKey: key });
  await createStoreTables(url);
  await t.tables.multiTenant('public.customer');
  await t.tables.shared('public.state');
  for (const name of ['K1', 'K2', 'K3', 'K4', 'K5']) {
    await t.tenants.create({
      name,
      loginRole: true,
      ...(name === 'K5' ? { isolation: 'schema' as const } : {}),
    });
    await t.withTenant(name, (db) =>
      db.query("INSERT INTO customer (cust_num, name) SELECT g, 'row ' || g FROM generate_series(1, 3000) g"),
    );
  }
});
afterAll(async () => {
  await t?.close();
});

/** Runs `fn` while `tenant` writes; then checks every acknowledged write is there exactly once. */
async function underWrites(tenant: string, fn: () => Promise<void>): Promise<void> {
  const before = await customers(t, tenant);
  const writer = new SteadyWriter(t, tenant, 100_000);
  await fn();
  await writer.stop();
  expect(writer.errors).toEqual([]);
  const after = await customers(t, tenant);
  expect(new Set(after.keys())).toEqual(new Set([...before.keys(), ...writer.inserted]));
  expect(after.get(1)).toBe(`${before.get(1)}${'+'.repeat(writer.updates)}`);
}

describe('a tenant move killed with SIGKILL', () => {
  it('in the snapshot copy: the tenant keeps writing in place, and a rerun resumes and finishes', async () => {
    await underWrites('K1', async () => {
      await killedMove('K1', 'copy');
      expect(await t.tenants.show('K1')).toMatchObject({ isolation: 'shared', placementEpoch: 0 });
      expect((await t.moves.list()).map((m) => [m.tenant, m.phase])).toEqual([['K1', 'copy']]);
      await new Promise((resolve) => setTimeout(resolve, 200)); // writes land on the old copy meanwhile
      const report = await t.moves.move('K1', { to: 'database' });
      expect(report.verifiedTables).toBeGreaterThan(0);
    });
    expect(await t.tenants.show('K1')).toMatchObject({ isolation: 'database', placementEpoch: 1 });
  });

  it('at the cut-over, writes paused: a rerun drains, verifies and switches', async () => {
    await underWrites('K2', async () => {
      await killedMove('K2', 'cutover:writes paused');
      expect(await t.tenants.show('K2')).toMatchObject({ isolation: 'shared' });
      const fenced = await sql(
        'SELECT 1 FROM tenantry_move.fence WHERE tenant_id = (SELECT id FROM tenantry.tenant WHERE name = $1)',
        ['K2'],
      );
      expect(fenced).toHaveLength(1);
      await t.moves.move('K2', { to: 'database' });
    });
    expect(await t.tenants.show('K2')).toMatchObject({ isolation: 'database' });
  });

  it('after the switch: the tenant already lives in its database, a rerun drops the old copy', async () => {
    const id = (await t.tenants.show('K3')).id;
    await underWrites('K3', async () => {
      await killedMove('K3', 'cutover:switched');
      expect(await t.tenants.show('K3')).toMatchObject({ isolation: 'database' });
      expect((await t.moves.list()).map((m) => m.phase)).toEqual(['cleanup']);
      expect(await t.moves.abort('K3')).toBe('finished');
    });
    expect(await sql('SELECT 1 FROM public.customer WHERE tenant_id = $1', [id])).toEqual([]);
    expect(await t.moves.list()).toEqual([]);
  });

  it('a schema tenant’s move captures only its own rows of the catalog’s shared sequence table', async () => {
    await killedMove('K5', 'copy');
    const triggers = await sql<{ def: string }>(
      `SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger
       WHERE tgrelid = 'tenantry.sequence_value'::regclass AND tgname LIKE 'tenantry_move_%'`,
    );
    expect(triggers.length).toBeGreaterThan(0);
    // Every trigger on the table all tenants share is limited to K5's rows.
    for (const { def } of triggers) expect(def).toMatch(/WHEN \(\(.*segment = /);
    expect(await t.moves.abort('K5')).toBe('rolled back');
  });

  it('in the copy, then aborted: the tenant stays where it was and the new copy is gone', async () => {
    const tenant = await t.tenants.show('K4');
    await underWrites('K4', async () => {
      await killedMove('K4', 'copy');
      // Dropping it now would leave the move's database behind, out of reach of abort and repair.
      const drop = await t.tenants.drop('K4', { force: true }).catch((e: unknown) => e);
      expect((drop as { code?: string }).code).toBe('TENANTRY_ERR_MOVE_IN_PROGRESS');
      // A table declared now would be left out of the copy, and its rows deleted at cleanup.
      await sql(
        'CREATE TABLE public.late (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id))',
      );
      const late = await t.tables.multiTenant('public.late').catch((e: unknown) => e);
      expect((late as { code?: string }).code).toBe('TENANTRY_ERR_MOVE_IN_PROGRESS');
      expect(await t.moves.abort('K4')).toBe('rolled back');
    });
    expect(await t.tenants.show('K4')).toMatchObject({ isolation: 'shared', placementEpoch: 0 });
    expect(
      await sql('SELECT 1 FROM pg_database WHERE datname = $1', [
        `tenantry_t_${tenant.uuid.replace(/-/g, '')}`,
      ]),
    ).toEqual([]);
    expect(await sql("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tenantry_move_%'")).toEqual([]);
    expect(await t.moves.list()).toEqual([]);
    await t.tables.multiTenant('public.late');
  });
});
