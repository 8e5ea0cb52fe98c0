import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError } from '../../src/index.js';
import { TENANTS, expectOwn, faultFixture, readNotes, type FaultFixture } from './helpers.js';

let f: FaultFixture;

beforeAll(async () => {
  // budget 8, each tenant at most 2 at once; a checkout waits at most 3 s
  f = await faultFixture('faults_share', { budget: 8, perTenantMax: 2, checkoutTimeoutMs: 3_000 });
});

afterAll(async () => {
  await f?.close();
});

describe('one tenant exhausting its share', () => {
  it('a tenant opening many slow transactions on a slow network does not starve the others', async () => {
    f.proxy.latency(20);
    const greedy = 'HomeDepot';
    const others = TENANTS.map((t) => t.name).filter((name) => name !== greedy);
    let peak = 0;
    const sampler = setInterval(() => {
      const mine = f.tenantry.poolStats().tenants.find((t) => t.tenantName === greedy);
      peak = Math.max(peak, mine?.inUse ?? 0);
    }, 10);
    try {
      const flood = Array.from({ length: 30 }, () =>
        f.tenantry
          .withTenant(greedy, (db) =>
            db.transaction(async (tx) => {
              await tx.query('SELECT pg_sleep(0.3)');
              return (await tx.query<{ owner: string }>('SELECT owner FROM note ORDER BY id')).rows;
            }),
          )
          .then(
            (rows) => ({ rows }),
            (error: unknown) => ({ error }),
          ),
      );
      await new Promise((r) => setTimeout(r, 100));
      const served: string[] = [];
      await Promise.all(
        others.map(async (name) => {
          for (let i = 0; i < 5; i++) {
            expectOwn(name, await readNotes(f.tenantry, name));
            served.push(name);
          }
        }),
      );
      expect(served).toHaveLength(others.length * 5);
      const outcomes = await Promise.all(flood);
      for (const outcome of outcomes) {
        // the greedy tenant gets its own rows, or waits its turn and gives up with its own error
        if ('rows' in outcome) expectOwn(greedy, outcome.rows);
        else expect(isTenantryError(outcome.error, 'POOL_TIMEOUT'), String(outcome.error)).toBe(true);
      }
      expect(outcomes.some((o) => 'rows' in o)).toBe(true);
    } finally {
      clearInterval(sampler);
      f.proxy.pass();
    }
    expect(peak).toBeLessThanOrEqual(2);
    const stats = f.tenantry.poolStats();
    for (const name of others) {
      expect(stats.tenants.find((t) => t.tenantName === name)?.timeouts ?? 0, name).toBe(0);
    }
  });
});
