import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { audit, type MoveTarget, type Tenantry } from '../../src/index.js';
import { withClient } from '../helpers/db.js';
import { storeFixture, type Fixture } from '../helpers/fixtures.js';
import { customers, SteadyWriter } from './move-helpers.js';

// A tenant travels shared → schema → database → schema → shared while it keeps writing; after
// every hop it sees exactly its rows (through the application role and its own login role), its
// sequence goes on where it was, and nobody else sees anything of it.
let f: Fixture;
let t: Tenantry;

beforeAll(async () => {
  f = await storeFixture('move_schema', { loginRole: true });
  t = f.tenantry;
  await t.sequences.create('invoice');
  await t.tenants.create({ name: 'Nomad', loginRole: true });
  await t.withTenant('Nomad', async (db) => {
    await db.query(
      "INSERT INTO customer (cust_num, name) SELECT g, 'nomad ' || g FROM generate_series(1, 800) g",
    );
    for (let i = 0; i < 5; i++) await db.query("SELECT tenantry.next('invoice')");
  });
});
afterAll(async () => {
  await t?.close();
});

const nextInvoice = async () =>
  Number(
    (await t.withTenant('Nomad', (db) => db.query<{ n: string }>("SELECT tenantry.next('invoice') AS n")))
      .rows[0]?.n,
  );

async function hop(to: MoveTarget): Promise<void> {
  const before = await customers(t, 'Nomad');
  const writer = new SteadyWriter(t, 'Nomad', 20_000 + before.size * 10);
  await new Promise((resolve) => setTimeout(resolve, 150));
  const report = await t.moves.move('Nomad', { to });
  await writer.stop();
  expect(writer.errors).toEqual([]);
  expect(report.to.isolation).toBe(to);
  expect((await t.tenants.show('Nomad')).isolation).toBe(to);
  const after = await customers(t, 'Nomad');
  expect(new Set(after.keys())).toEqual(new Set([...before.keys(), ...writer.inserted]));
  expect(after.get(1)).toBe(`${before.get(1)}${'+'.repeat(writer.updates)}`);
  // its own login role reaches the same rows
  const own = await t.withTenant(
    'Nomad',
    (db) =>
      db.query<{ n: number; t: string }>(
        'SELECT count(*)::int AS n, tenantry.tenant_name() AS t FROM customer',
      ),
    { identity: 'tenant' },
  );
  expect(own.rows[0]).toEqual({ n: after.size, t: 'Nomad' });
  // and nobody else sees any of it
  const others = await t.withTenant('HomeDepot', (db) =>
    db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM customer WHERE name LIKE 'nomad%' OR name LIKE 'writer%'",
    ),
  );
  expect(others.rows[0]?.n).toBe(0);
  expect(await t.moves.list()).toEqual([]);
  // nothing the move left behind looks like an isolation hazard
  const audited = await audit(f.url);
  expect(audited.findings.filter((x) => x.severity !== 'low')).toEqual([]);
}

describe('moving a tenant through every isolation model', () => {
  it('shared → schema', async () => {
    await hop('schema');
    const tenant = await t.tenants.show('Nomad');
    expect(tenant.schemaName).toMatch(/^tenantry_t_/);
    expect(await nextInvoice()).toBe(6);
    // the shared tables hold nothing of it any more
    const left = await withClient(f.url, (c) =>
      c.query('SELECT 1 FROM public.customer WHERE tenant_id = $1', [tenant.id]),
    );
    expect(left.rows).toEqual([]);
  });

  it('schema → database', async () => {
    const schema = (await t.tenants.show('Nomad')).schemaName;
    await hop('database');
    expect(await nextInvoice()).toBe(7);
    const gone = await withClient(f.url, (c) =>
      c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]),
    );
    expect(gone.rows).toEqual([]);
  });

  it('database → schema', async () => {
    await hop('schema');
    expect(await nextInvoice()).toBe(8);
  });

  it('schema → shared', async () => {
    await hop('shared');
    expect(await nextInvoice()).toBe(9);
    const faces = await withClient(f.url, (c) =>
      c.query(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenantry\\_m\\_%' OR nspname LIKE 'tenantry\\_t\\_%'",
      ),
    );
    expect(faces.rows).toEqual([]);
    expect((await t.tenants.show('Nomad')).placementEpoch).toBe(4);
  });
});
