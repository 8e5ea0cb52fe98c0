import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  type CrossTenantOptions,
  type ScanFailure,
  type ScanRow,
  type Tenantry,
} from '../src/index.js';
import { tenantSearchPath } from '../src/catalog/index.js';
import { ScanSession } from '../src/cross-tenant/session.js';
import { codePointKey, decimalKey } from '../src/cross-tenant/sort-key.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;
const NICKS = ['Émile', 'zoë', '\u{1D518}nicode', '\uFF46ullwidth', 'alpha', 'Zed', null, 'beta'];
const SHARED = ['T01', 'T02', 'T03', 'T04', 'T05', 'T06', 'T07'];

async function collect(options: CrossTenantOptions, failures?: ScanFailure[]): Promise<ScanRow[]> {
  const rows: ScanRow[] = [];
  for await (const row of tenantry.crossTenant({ ...options, asOperator: true }, failures)) rows.push(row);
  return rows;
}

/** Code-point order with NULLs last, as PostgreSQL's "C" collation. */
function codePointOrder(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++)
    if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

beforeAll(async () => {
  const url = await createTestDatabase('cross_scan');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, nick text,
      score numeric, big bigint, joined timestamptz, vip boolean, PRIMARY KEY (tenant_id, cust_num));
    CREATE TABLE orders (tenant_id int NOT NULL, order_num int NOT NULL, cust_num int NOT NULL, amount int NOT NULL,
      PRIMARY KEY (tenant_id, order_num));`);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.multiTenant('public.orders');
  for (const name of SHARED) await tenantry.tenants.create({ name, loginRole: name === 'T03' });
  await tenantry.tenants.create({ name: 'S1', isolation: 'schema' });
  await tenantry.tenants.create({ name: 'D1', isolation: 'database' });
  for (const [t, name] of [...SHARED, 'S1', 'D1'].entries()) {
    await tenantry.withTenant(name, async (db) => {
      for (const [i, nick] of NICKS.entries()) {
        await db.query(
          `INSERT INTO customer (cust_num, name, nick, score, big, joined, vip)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [
            i + 1,
            `${name}-${i + 1}`,
            nick === null ? null : `${nick}${t}`,
            ((i * 37 + t * 11) % 23) - 11.5,
            String(9_007_199_254_740_000n + BigInt((i * 7 + t * 3) % 19)),
            new Date(Date.UTC(2024, 0, 1 + ((i * 5 + t) % 28))),
            (i + t) % 3 === 0,
          ],
        );
        await db.query('INSERT INTO orders (order_num, cust_num, amount) VALUES ($1, $1, $2)', [
          i + 1,
          t * 100 + i,
        ]);
      }
    });
  }
  // T03 has a view of its own (a tenant view, as a per-tenant column gives one): its `SELECT *`
  // has one more column than the other tenants'.
  await tenantry.withTenant(
    'T03',
    (db) => db.query('CREATE VIEW customer AS SELECT c.*, c.cust_num AS loyalty FROM tenantry_v.customer c'),
    { identity: 'tenant' },
  );
});
afterAll(async () => {
  await tenantry?.close();
});

describe('cross-tenant scans: batches, streams and the merge', () => {
  it('by tenant, one batch statement and one query per tenant give the same rows, each tenant with its own columns', async () => {
    const sql = 'SELECT * FROM customer ORDER BY cust_num';
    const batched = await collect({ sql });
    const single = await collect({ sql, batch: false });
    expect(batched).toEqual(single);
    expect(batched).toHaveLength(9 * NICKS.length);
    const order = [...new Set(batched.map((r) => r._tenant_name))];
    expect(order).toEqual([...SHARED, 'S1', 'D1']);
    const ids = batched.map((r) => r._tenant_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    for (const row of batched) {
      expect(row.name).toMatch(new RegExp(`^${row._tenant_name}-`));
      expect('loyalty' in row).toBe(row._tenant_name === 'T03');
      expect(typeof row.big).toBe('string');
      expect(row.joined).toBeInstanceOf(Date);
    }
  });

  it('merges by text in code-point order with NULLs last, by numeric, bigint, timestamp and boolean keys', async () => {
    for (const batch of [true, false]) {
      const rows = await collect({ sql: 'SELECT nick, name FROM customer', orderBy: 'nick', batch });
      const nicks = rows.map((r) => r.nick as string | null);
      expect(nicks).toEqual([...nicks].sort(codePointOrder));
      expect(nicks.at(-1)).toBeNull();
      expect(rows).toHaveLength(9 * NICKS.length);
    }
    const score = await collect({ sql: 'SELECT score FROM customer', orderBy: 'score' });
    const scores = score.map((r) => Number(r.score));
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    const big = await collect({ sql: 'SELECT big FROM customer', orderBy: 'big', concurrency: 2 });
    const bigs = big.map((r) => BigInt(r.big as string));
    expect(bigs).toEqual([...bigs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const joined = await collect({ sql: 'SELECT joined, vip FROM customer', orderBy: 'joined' });
    const times = joined.map((r) => (r.joined as Date).getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const vip = await collect({ sql: 'SELECT vip FROM customer', orderBy: 'vip' });
    expect(vip.map((r) => r.vip)).toEqual([...vip.map((r) => r.vip)].sort());
    expect(vip.every((r) => !('_tenantry_sort' in r))).toBe(true);
  });

  it('with parameters, every tenant gets a cursor of its own, several on one connection', async () => {
    const rows = await collect({
      sql: 'SELECT name, cust_num FROM customer WHERE cust_num <= $1',
      values: [2],
      orderBy: 'name',
      concurrency: 2,
      fetchSize: 1,
    });
    expect(rows.map((r) => r.name)).toEqual(
      [...SHARED, 'S1', 'D1'].flatMap((t) => [`${t}-1`, `${t}-2`]).sort(),
    );
    expect(tenantry.poolStats().servers.every((s) => s.inUse === 0)).toBe(true);
  });

  it('a batch checks each tenant’s placement epoch: a tenant moved since the scan read the catalog is TN001', async () => {
    const t = await tenantry.resolveTenant('T02');
    const call = (epoch: number) =>
      tenantry.operator.query(
        `SELECT * FROM tenantry.scan_tenants(ARRAY[$1::int], ARRAY[$2::text], ARRAY[''], ARRAY[$3::int],
           'SELECT 1 AS one', false, 'tenantry.scan_epoch_test') AS t(_tenant_id int, one int)`,
        [t.id, tenantSearchPath(t.uuid), epoch],
      );
    expect((await call(t.placementEpoch)).rows).toEqual([{ _tenant_id: t.id, one: 1 }]);
    await expect(call(t.placementEpoch + 1)).rejects.toMatchObject({ code: 'TN001' });
  });

  it('keeps joins within one tenant', async () => {
    for (const orderBy of [undefined, 'amount']) {
      const rows = await collect({
        sql: 'SELECT c.name, o.amount FROM customer c JOIN orders o USING (cust_num)',
        ...(orderBy ? { orderBy } : {}),
      });
      expect(rows).toHaveLength(9 * NICKS.length);
      for (const row of rows) expect(String(row.name).startsWith(`${row._tenant_name}-`)).toBe(true);
    }
  });

  it('streams: rows arrive before a later row fails, and stopping early returns the connections', async () => {
    const seen: ScanRow[] = [];
    const error = await (async () => {
      for await (const row of tenantry.crossTenant({
        sql: 'SELECT g FROM generate_series(1, 50) g WHERE 1 / (50 - g) IS NOT NULL OR g < 50',
        where: "name = 'T01'",
        fetchSize: 5,
        asOperator: true,
      })) {
        seen.push(row);
      }
    })().catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('22012');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(50);
    for (const batch of [true, false]) {
      for await (const row of tenantry.crossTenant({
        sql: 'SELECT name FROM customer',
        batch,
        asOperator: true,
      })) {
        expect(row._tenant_name).toBe('T01');
        break;
      }
      for await (const row of tenantry.crossTenant({
        sql: 'SELECT name FROM customer',
        orderBy: 'name',
        asOperator: true,
      })) {
        expect(row.name).toBe('D1-1');
        break;
      }
    }
    expect(tenantry.poolStats().servers.every((s) => s.inUse === 0)).toBe(true);
  });

  it('runs read-only and refuses a query text with several statements', async () => {
    for (const batch of [true, false]) {
      const write = await collect({ sql: 'SELECT name FROM customer FOR UPDATE', batch }).catch(
        (e: unknown) => e,
      );
      expect((write as { code?: string }).code).toBe('25006');
    }
    const two = await collect({ sql: 'SELECT 1; SELECT 2', batch: false }).catch((e: unknown) => e);
    expect((two as { code?: string }).code).toBe('42601');
    const failures: ScanFailure[] = [];
    const partial = await collect(
      { sql: 'SELECT name FROM customer', where: "name = 'T02'", onError: 'partial' },
      failures,
    );
    expect(partial).toHaveLength(NICKS.length);
    expect(failures).toEqual([]);
  });

  it('orders merge keys exactly as PostgreSQL does: numeric, and text in the "C" collation', async () => {
    const numbers = [
      '0',
      '-0.5',
      '-0.55',
      '12.5',
      '-12.5',
      '3',
      '0.05',
      '1e3',
      'NaN',
      'Infinity',
      '-Infinity',
      '99999999999999999999.000001',
      '-99999999999999999999',
      '0.000',
      '7.10',
      '7.1',
    ];
    const { rows: byPg } = await tenantry.operator.query<{ v: string }>(
      'SELECT x::text AS v FROM unnest($1::numeric[]) x ORDER BY x, x::text',
      [numbers],
    );
    const ours = byPg
      .map((r) => r.v)
      .sort((a, b) => {
        const x = decimalKey(a);
        const y = decimalKey(b);
        return x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0;
      });
    expect(ours).toEqual(byPg.map((r) => r.v));
    const texts = ['a', 'B', 'é', '\u{1D518}', '\uFF46', '\uE000', 'ab', '', 'Z', '\u00FF', '\u4E2D'];
    const { rows: textByPg } = await tenantry.operator.query<{ t: string }>(
      'SELECT t FROM unnest($1::text[]) t ORDER BY t COLLATE "C"',
      [texts],
    );
    const sorted = [...texts].sort((a, b) => (codePointKey(a) < codePointKey(b) ? -1 : 1));
    expect(sorted).toEqual(textByPg.map((r) => r.t));
  });

  it('reads every stream in FETCHes of fetchSize rows, never more', async () => {
    const run = vi.spyOn(ScanSession.prototype, 'run');
    try {
      for (const batch of [true, false]) {
        run.mockClear();
        const rows = await collect({
          sql: 'SELECT name FROM customer',
          where: "name between 'T01' and 'T03'",
          orderBy: 'name',
          fetchSize: 3,
          batch,
        });
        expect(rows).toHaveLength(3 * NICKS.length);
        const fetches = run.mock.calls.filter(([text]) => text.startsWith('FETCH'));
        expect(fetches.every(([text]) => /^FETCH 3 FROM /.test(text))).toBe(true);
        expect(fetches.length).toBeGreaterThanOrEqual(rows.length / 3);
        for (const result of run.mock.results) {
          if (result.type === 'return') expect((await result.value).rows.length).toBeLessThanOrEqual(3);
        }
      }
    } finally {
      run.mockRestore();
    }
  });
});
