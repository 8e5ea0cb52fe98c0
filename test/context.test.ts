import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, getTenant, tryGetTenant, type Tenantry } from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

let tenantry: Tenantry;
const tenantNames = Array.from({ length: 50 }, (_, i) => `Tenant${String(i).padStart(2, '0')}`);

beforeAll(async () => {
  const url = await createTestDatabase('context');
  tenantry = await createTenantry({ databaseUrl: url, pool: { budget: 8 } });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  for (const name of tenantNames) {
    await tenantry.tenants.create({ name });
    await tenantry.withTenant(name, (db) =>
      db.query('INSERT INTO customer (cust_num, name) VALUES (1, $1)', [name]),
    );
  }
});
afterAll(async () => {
  await tenantry?.close();
});

async function* ticks(n: number): AsyncGenerator<string> {
  for (let i = 0; i < n; i++) {
    await sleep(Math.random() * 2);
    yield getTenant().name;
  }
}

/** One request: hops through every async mechanism and checks the tenant after each hop. */
async function request(name: string): Promise<string[]> {
  return tenantry.withTenant(name, async (db) => {
    const seen: string[] = [];
    await sleep(Math.random() * 5);
    seen.push(getTenant().name);
    seen.push(
      await new Promise<string>((resolve) => setTimeout(() => resolve(getTenant().name), Math.random() * 3)),
    );
    seen.push(await new Promise<string>((resolve) => setImmediate(() => resolve(getTenant().name))));
    seen.push(
      await Promise.resolve()
        .then(() => sleep(1))
        .then(() => getTenant().name),
    );
    for await (const tick of ticks(2)) seen.push(tick);
    const streamed: string[] = [];
    await pipeline(
      Readable.from([1, 2, 3]),
      new Transform({
        objectMode: true,
        transform(_chunk, _enc, done) {
          setTimeout(() => done(null, getTenant().name), Math.random() * 2);
        },
      }),
      async function* (source: AsyncIterable<string>) {
        for await (const value of source) streamed.push(value);
      },
    );
    seen.push(...streamed);
    const { rows } = await tenantry.query<{ tenant: string; customer: string }>(
      'SELECT tenantry.tenant_name() AS tenant, (SELECT name FROM customer) AS customer',
    );
    seen.push(rows[0]!.tenant, rows[0]!.customer);
    seen.push(
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM customer')).rows[0]!.n === '1'
        ? name
        : 'LEAK',
    );
    return seen;
  });
}

describe('tenant context', () => {
  it('survives awaits, timers, promise chains, async iterators and streams across 1,000 interleaved requests over 50 tenants', async () => {
    const sequence = Array.from({ length: 1000 }, (_, i) => tenantNames[(i * 7919) % tenantNames.length]!);
    const results = await Promise.all(sequence.map((name) => request(name).then((seen) => ({ name, seen }))));
    let checks = 0;
    for (const { name, seen } of results) {
      expect(seen.length).toBe(12);
      for (const value of seen) {
        expect(value).toBe(name);
        checks++;
      }
    }
    expect(checks).toBe(12_000);
    expect(tryGetTenant()).toBeUndefined();
  });

  it('does not leak into work started outside withTenant, even when it runs concurrently', async () => {
    let outside: string | undefined = 'unset';
    const inside = tenantry.withTenant('Tenant01', async () => {
      await sleep(5);
      return getTenant().name;
    });
    await sleep(1);
    outside = tryGetTenant()?.name;
    expect(await inside).toBe('Tenant01');
    expect(outside).toBeUndefined();
  });

  it('nested withTenant switches the tenant and restores the outer one afterwards', async () => {
    await tenantry.withTenant('Tenant02', async () => {
      const inner = await tenantry.withTenant('Tenant03', async () => {
        await sleep(1);
        return (await tenantry.query<{ t: string }>('SELECT tenantry.tenant_name() AS t')).rows[0]!.t;
      });
      expect(inner).toBe('Tenant03');
      expect(getTenant().name).toBe('Tenant02');
      expect((await tenantry.query<{ t: string }>('SELECT tenantry.tenant_name() AS t')).rows[0]!.t).toBe(
        'Tenant02',
      );
    });
  });
});
