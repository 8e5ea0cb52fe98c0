import { expect } from 'vitest';
import {
  ALL_FACES,
  attack,
  attempt,
  column,
  useFixture,
  type Face,
  type SecurityFixture,
} from './harness.js';

// Covert channels: what errors, conflicts and counters could tell one tenant about another.
let lowesUser = '';
const fx = useFixture('sec_channels', async (f) => {
  await f.tenantry.withTenant('Lowes', (db) =>
    db.query("INSERT INTO customer (cust_num, name, city) VALUES (777, 'Only Lowes', 'Boston')"),
  );
  const [row] = await f.operator<{ id: string }>("SELECT id::text FROM public.users WHERE name = 'Lou Blue'");
  lowesUser = row!.id;
});

/** Lowes's orders and customers exactly as the demo (and setup) left them. */
async function lowesIntact(f: SecurityFixture): Promise<void> {
  const orders = await f.operator<{ order_num: number; status: string }>(
    'SELECT order_num, status FROM public."order" WHERE tenant_id = $1 ORDER BY 1',
    [f.id('Lowes')],
  );
  expect(orders).toEqual([
    { order_num: 1, status: 'Ordered' },
    { order_num: 2, status: 'Shipped' },
    { order_num: 3, status: 'Ordered' },
  ]);
  const [customers] = await f.operator<{ n: number }>(
    'SELECT count(*)::int AS n FROM public.customer WHERE tenant_id = $1',
    [f.id('Lowes')],
  );
  expect(customers?.n).toBe(4);
}

/** Runs `sql` and undoes its row with `undo` (both as alice@HomeDepot). */
async function andUndo(
  face: Face,
  sql: string,
  params: unknown[],
  undo: string,
  undoParams: unknown[] = [],
): Promise<number | null> {
  const { rowCount } = await face.run(sql, params);
  await face.run(undo, undoParams);
  return rowCount;
}

// proves: keys other tenants hold never collide (no unique violation tells that a key exists elsewhere)
attack('unique keys: another tenant’s key is free to use', ALL_FACES, fx, async (face, f) => {
  expect(
    await andUndo(
      face,
      "INSERT INTO users (id, name) VALUES ($1::uuid, 'Probe')",
      [lowesUser],
      'DELETE FROM users WHERE id = $1::uuid',
      [lowesUser],
    ),
  ).toBe(1);
  expect(
    await andUndo(
      face,
      "INSERT INTO tenantry_v.customer (cust_num, name) VALUES (777, 'Probe')",
      [],
      'DELETE FROM customer WHERE cust_num = 777',
    ),
  ).toBe(1);
  expect(
    await andUndo(
      face,
      'INSERT INTO "order" (order_num, cust_num) VALUES (3, 1)',
      [],
      'DELETE FROM "order" WHERE order_num = 3',
    ),
  ).toBe(1);
  await lowesIntact(f);
});

// proves: a foreign-key error reads the same whether another tenant holds the key or nobody does
attack('foreign-key errors do not reveal other tenants’ keys', ALL_FACES, fx, async (face) => {
  const held = await attempt(face, 'INSERT INTO "order" (order_num, cust_num) VALUES (900, 777)');
  const nobody = await attempt(face, 'INSERT INTO "order" (order_num, cust_num) VALUES (900, 778)');
  expect(held).toMatchObject({ sqlstate: '23503' });
  expect(nobody).toMatchObject({ sqlstate: '23503' });
  expect((held as { message: string }).message).toBe((nobody as { message: string }).message);
});

// proves: ON CONFLICT only ever conflicts with, and updates, the tenant's own rows; no other tenant's key can be targeted
attack('ON CONFLICT touches only the tenant’s own rows', ALL_FACES, fx, async (face, f) => {
  const insert =
    'INSERT INTO "order" (order_num, cust_num, status) VALUES (3, 1, \'Probe\') ON CONFLICT DO NOTHING RETURNING order_num, status';
  expect((await face.run(insert)).rows).toEqual([{ order_num: 3, status: 'Probe' }]);
  expect((await face.run(insert)).rows).toEqual([]);
  const targeted = await attempt(
    face,
    'INSERT INTO "order" (order_num, cust_num) VALUES (1, 1) ON CONFLICT (order_num) DO UPDATE SET status = \'Hacked\'',
  );
  expect(targeted).toMatchObject({ sqlstate: '42P10' });
  await face.run('DELETE FROM "order" WHERE order_num = 3');
  await lowesIntact(f);
});

// proves: RETURNING hands back only rows the statement could touch: the tenant's own
attack('RETURNING returns only own rows', ALL_FACES, fx, async (face, f) => {
  expect(
    column((await face.run('UPDATE tenantry_v.customer SET city = city RETURNING name')).rows, 'name'),
  ).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
  expect(
    (await face.run("DELETE FROM customer WHERE name IN ('Fred Smith', 'Only Lowes') RETURNING name")).rows,
  ).toEqual([]);
  const inserted = await face.run(
    "INSERT INTO users (name) VALUES ('Returned') RETURNING tenantry.tenant_name() AS t, id",
  );
  expect(inserted.rows[0]).toMatchObject({ t: 'HomeDepot' });
  await face.run('DELETE FROM users WHERE id = $1::uuid', [inserted.rows[0]!.id]);
  await lowesIntact(f);
});

// proves: MERGE (also WHEN NOT MATCHED BY SOURCE, which visits every target row) sees only the tenant's rows
attack('MERGE matches and changes only own rows', ALL_FACES, fx, async (face, f) => {
  const merged = await face.run(
    `MERGE INTO "order" o USING (SELECT 1 AS n) s ON o.order_num = s.n
     WHEN MATCHED THEN UPDATE SET status = o.status
     WHEN NOT MATCHED BY SOURCE THEN UPDATE SET status = o.status
     RETURNING merge_action() AS action, o.order_num`,
  );
  expect(merged.rows.map((r) => Number(r.order_num)).sort()).toEqual([1, 2]);
  await lowesIntact(f);
});

// proves: a multi-tenant sequence counts per tenant: other tenants' draws leave no gap in this tenant's values
attack('tenantry.next values are per tenant', ALL_FACES, fx, async (face) => {
  const next = async (user?: 'fred@Lowes') =>
    Number((await face.run("SELECT tenantry.next('custnum') AS v", undefined, user)).rows[0]!.v);
  const first = await next();
  for (let i = 0; i < 3; i++) await next('fred@Lowes');
  expect(await next()).toBe(first + 1);
});

// proves: another tenant holding its counter (an open transaction) does not delay this tenant's draw
attack('tenantry.next timing does not depend on other tenants', ALL_FACES, fx, async (face, f) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const holding = new Promise<void>((resolve) => (started = resolve));
  const lowes = f.tenantry.withTenant('Lowes', (db) =>
    db.transaction(async (tx) => {
      await tx.query("SELECT tenantry.next('custnum')");
      started();
      await held;
    }),
  );
  await holding;
  // the counter really is held: another Lowes draw waits for it
  let queued = false;
  const waiting = f.tenantry
    .withTenant('Lowes', (db) => db.query("SELECT tenantry.next('custnum')"))
    .then(() => void (queued = true));
  const began = Date.now();
  await face.run("SELECT tenantry.next('custnum')");
  expect(Date.now() - began).toBeLessThan(1_000);
  expect(queued).toBe(false);
  release();
  await lowes;
  await waiting;
});

// proves: a tenant group's segment is invisible and unwritable to non-members, and its name is not revealed
attack('group segments stay with their members', ALL_FACES, fx, async (face, f) => {
  expect(column((await face.run('SELECT item_name FROM item')).rows, 'item_name')).toEqual([
    'Lawn Mower',
    'Screw Driver',
    'Table',
  ]);
  expect((await face.run("UPDATE item SET price = 0 WHERE item_name = 'Shovel'")).rowCount).toBe(0);
  const group = f.id('LowesItm');
  expect(
    (await face.run('SELECT tenantry.group_name($1) AS g, tenantry.segment_owner($1) AS o', [group])).rows,
  ).toEqual([{ g: null, o: null }]);
  expect((await face.run('SELECT count(*)::int AS n FROM item', undefined, 'bob@LowesBos')).rows).toEqual([
    { n: 6 },
  ]);
  const [shovel] = await f.operator<{ price: string }>(
    "SELECT price::text FROM public.item WHERE item_name = 'Shovel'",
  );
  expect(shovel?.price).toBe('24.99');
});
