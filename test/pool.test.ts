import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, isTenantryError } from '../src/index.js';
import { PoolManager, type Lease, type PoolTarget } from '../src/pool/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';

let url: string;
const managers: PoolManager[] = [];

beforeAll(async () => {
  url = await createTestDatabase('pool');
});
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
});

function manager(options: ConstructorParameters<typeof PoolManager>[0], budget: number): PoolManager {
  const m = new PoolManager(options, createLogger());
  m.setServer('main', budget);
  managers.push(m);
  return m;
}

function target(tenantId: number, identity = `id${tenantId}`, app = 'pooltest'): PoolTarget {
  return {
    server: 'main',
    identity,
    tenantId,
    tenantName: `T${tenantId}`,
    connect: () => ({ connectionString: url, application_name: app }),
  };
}

async function backends(app: string): Promise<number> {
  return withClient(url, async (c) => {
    const { rows } = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [app],
    );
    return rows[0]!.n;
  });
}

const pid = async (lease: Lease) =>
  (await lease.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

describe('pool of pools', () => {
  it('creates pools lazily, one per (server, identity), and reuses their connections', async () => {
    const m = manager({}, 10);
    expect(m.stats().pools).toBe(0);
    const a = await m.acquire(target(1));
    const first = await pid(a);
    a.release();
    const again = await m.acquire(target(1));
    expect(await pid(again)).toBe(first);
    again.release();
    const b = await m.acquire(target(2));
    b.release();
    expect(m.stats().pools).toBe(2);
    expect(m.stats().servers[0]).toMatchObject({ server: 'main', budget: 10, total: 2, inUse: 0, idle: 2 });
  });

  it('tryAcquire serves an idle connection at once, and nothing when it would wait or connect', async () => {
    const m = manager({ perTenantMax: 1 }, 4);
    expect(m.tryAcquire(target(1))).toBeUndefined(); // no connection yet: acquire must open one
    const first = await m.acquire(target(1));
    const backend = await pid(first);
    first.release();
    const now = m.tryAcquire(target(1));
    expect(now).toBeDefined();
    expect(await pid(now!)).toBe(backend);
    expect(m.tryAcquire(target(1))).toBeUndefined(); // the tenant is at its cap
    const waiting = m.acquire(target(1));
    now!.release();
    const next = await waiting;
    expect(await pid(next)).toBe(backend);
    next.markBroken();
    next.release();
    expect(m.tryAcquire(target(1))).toBeUndefined(); // the broken one was discarded, not reused
    expect(m.stats().tenants.find((t) => t.tenantId === 1)).toMatchObject({ inUse: 0, checkouts: 3 });
    await m.close();
    expect(m.tryAcquire(target(1))).toBeUndefined();
  });

  it('never exceeds the server budget, counted in pg_stat_activity', async () => {
    const app = 'pool_budget';
    const m = manager({ perTenantMax: 5 }, 5);
    let peak = 0;
    let running = true;
    const watcher = (async () => {
      while (running) {
        peak = Math.max(peak, await backends(app));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const lease = await m.acquire(target(i % 20, `id${i % 20}`, app));
        try {
          await lease.client.query('SELECT pg_sleep(0.01)');
        } finally {
          lease.release();
        }
      }),
    );
    running = false;
    await watcher;
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(5);
    expect(m.stats().servers[0]!.total).toBeLessThanOrEqual(5);
  });

  it('a pool with maxConnections holds no more than that; the rest wait and are all served', async () => {
    const app = 'pool_shared_max';
    const m = manager({ perTenantMax: 20 }, 20);
    // one identity shared by 30 tenants (as the application role's pool is), capped at 3
    const shared = (tenantId: number): PoolTarget => ({ ...target(tenantId, 'app', app), maxConnections: 3 });
    let peak = 0;
    let running = true;
    const watcher = (async () => {
      while (running) {
        peak = Math.max(peak, await backends(app));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const served = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const lease = await m.acquire(shared(i));
        try {
          await lease.client.query('SELECT pg_sleep(0.01)');
          return i;
        } finally {
          lease.release();
        }
      }),
    );
    running = false;
    await watcher;
    expect(served).toHaveLength(30);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(3);
    expect(m.stats().servers[0]!.total).toBeLessThanOrEqual(3);
    // another pool on the same server is not held back by the capped one
    const other = await m.acquire(target(99, 'other', app));
    other.release();
  });

  it('is fair: a tenant hammering with 200 requests does not starve 100 cold tenants', async () => {
    const m = manager({ checkoutTimeoutMs: 20_000 }, 8);
    let hotDone = 0;
    const run = async (t: PoolTarget) => {
      const started = Date.now();
      const lease = await m.acquire(t);
      const waited = Date.now() - started;
      try {
        await lease.client.query('SELECT pg_sleep(0.005)');
      } finally {
        lease.release();
      }
      if (t.tenantId === 1) hotDone++;
      return { waited, hotDoneBefore: hotDone };
    };
    const hot = Array.from({ length: 200 }, () => run(target(1, 'app')));
    await new Promise((r) => setTimeout(r, 20));
    const cold = Array.from({ length: 100 }, (_, i) => run(target(100 + i, 'app')));
    const [hotWaits, coldWaits] = await Promise.all([Promise.all(hot), Promise.all(cold)]);
    expect(coldWaits).toHaveLength(100);
    const stats = m.stats();
    expect(
      stats.tenants.filter((t) => t.tenantId >= 100).every((t) => t.checkouts === 1 && t.timeouts === 0),
    ).toBe(true);
    // cold tenants are interleaved with the hot one instead of queueing behind all of its requests
    const coldMax = Math.max(...coldWaits.map((w) => w.waited));
    const hotMax = Math.max(...hotWaits.map((w) => w.waited));
    expect(coldMax).toBeLessThan(hotMax);
    // every cold request finished while the hot tenant still had most of its 200 requests queued
    expect(Math.max(...coldWaits.map((w) => w.hotDoneBefore))).toBeLessThan(100);
    expect(stats.tenants.find((t) => t.tenantId === 1)?.checkouts).toBe(200);
  });

  it('caps one tenant at its share and times out with TENANTRY_ERR_POOL_TIMEOUT naming the tenant and wait', async () => {
    const m = manager({ perTenantMax: 1, checkoutTimeoutMs: 150 }, 4);
    const held = await m.acquire(target(7));
    const error = await m.acquire(target(7)).catch((e: unknown) => e);
    expect(isTenantryError(error, 'POOL_TIMEOUT')).toBe(true);
    expect((error as Error).message).toMatch(/Tenant T7 waited 1\d\d ms/);
    // another tenant is not affected by T7's cap
    const other = await m.acquire(target(8));
    other.release();
    held.release();
    expect(m.stats().tenants.find((t) => t.tenantId === 7)?.timeouts).toBe(1);
  });

  it('keeps at most maxPools live pools (LRU) and closes idle connections after the idle timeout', async () => {
    const app = 'pool_lru';
    const m = manager({ maxPools: 3, idleTimeoutMs: 100 }, 10);
    for (let i = 0; i < 6; i++) (await m.acquire(target(i, `lru${i}`, app))).release();
    expect(m.stats().pools).toBeLessThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 80));
    expect(await backends(app)).toBeLessThanOrEqual(3);
    await new Promise((r) => setTimeout(r, 400));
    expect(m.stats().pools).toBe(0);
    expect(await backends(app)).toBe(0);
  });

  it('an evicted pool never serves again: in-flight work finishes, its connection is then closed', async () => {
    const m = manager({}, 4);
    const lease = await m.acquire(target(3, 'evict'));
    const before = await pid(lease);
    m.closeIdentity('main', 'evict');
    const { rows } = await lease.client.query<{ one: number }>('SELECT 1 AS one');
    expect(rows[0]!.one).toBe(1);
    lease.release();
    const fresh = await m.acquire(target(3, 'evict'));
    expect(await pid(fresh)).not.toBe(before);
    fresh.release();
    await withClient(url, async (c) => {
      const { rows: alive } = await c.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [before]);
      expect(alive).toHaveLength(0);
    });
  });

  it('the replacement of a closed pool stays registered when the closed one drains', async () => {
    const m = manager({ perTenantMax: 4 }, 8);
    const old = await m.acquire(target(4, 'replaced'));
    m.closeIdentity('main', 'replaced');
    const replacement = await m.acquire(target(4, 'replaced'));
    const kept = await pid(replacement);
    replacement.release();
    old.release(); // the closed pool drains now
    const again = await m.acquire(target(4, 'replaced'));
    // Served by the replacement's idle connection, not by a third pool next to a lost one.
    expect(await pid(again)).toBe(kept);
    again.release();
    expect(m.stats().pools).toBe(1);
  });

  it('the checkout timeout holds while a connection is being made; that connection then serves the next checkout', async () => {
    const m = manager({ checkoutTimeoutMs: 300 }, 4);
    let release: () => void = () => undefined;
    const configured = new Promise<void>((resolve) => (release = resolve));
    const slow: PoolTarget = {
      ...target(5, 'slowconfig'),
      // e.g. a permission role being created behind another transaction's row lock
      connect: async () => {
        await configured;
        return { connectionString: url, application_name: 'pooltest' };
      },
    };
    const error = await m.acquire(slow).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('TENANTRY_ERR_POOL_TIMEOUT');
    release();
    const later = await m.acquire(slow);
    expect(await pid(later)).toBeGreaterThan(0);
    later.release();
    expect(m.stats().servers[0]?.total).toBe(1);
  });

  it('recycles a backend after it served too many distinct schemas', async () => {
    const m = manager({ maxSchemasPerConnection: 2 }, 4);
    const first = await m.acquire(target(4, 'recycle'));
    const firstPid = await pid(first);
    ['a', 'b'].forEach((s) => first.noteSchema(s));
    first.release();
    const second = await m.acquire(target(4, 'recycle'));
    expect(await pid(second)).toBe(firstPid);
    second.noteSchema('c');
    second.release();
    const third = await m.acquire(target(4, 'recycle'));
    expect(await pid(third)).not.toBe(firstPid);
    third.release();
  });

  it('discards a connection whose backend was terminated while idle', async () => {
    const m = manager({}, 2);
    const lease = await m.acquire(target(5, 'dead'));
    const dead = await pid(lease);
    lease.release();
    await withClient(url, (c) => c.query('SELECT pg_terminate_backend($1)', [dead]));
    await new Promise((r) => setTimeout(r, 100));
    const next = await m.acquire(target(5, 'dead'));
    expect(await pid(next)).not.toBe(dead);
    next.release();
  });

  it('rejects waiters and refuses checkouts once closed', async () => {
    const m = manager({ checkoutTimeoutMs: 5_000 }, 1);
    const held = await m.acquire(target(6));
    const waiting = m.acquire(target(6)).catch((e: unknown) => e);
    await m.close();
    expect(isTenantryError(await waiting, 'CLOSED')).toBe(true);
    expect(isTenantryError(await m.acquire(target(6)).catch((e: unknown) => e), 'CLOSED')).toBe(true);
    held.release();
  });
});
