import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTenant, type TenantIsolation, type Tenantry } from '../../src/index.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_fair');
  t = f.tenantry;
});

afterAll(async () => {
  await f?.tenantry.close();
});

/** Checkouts of tenant connections so far, over all tenants (every tenant-scoped statement takes one). */
const checkouts = () => t.poolStats().tenants.reduce((sum, s) => sum + s.checkouts, 0);

describe('fair polling across tenants', () => {
  const CONCURRENCY = 4;
  const PREFETCH = 4;
  const CLAIM = CONCURRENCY + PREFETCH; // jobs per claim cycle

  it.each<TenantIsolation>(['shared', 'schema', 'database'])(
    "a %s tenant with 2,000 queued jobs does not delay other tenants' single jobs by more than one claim cycle",
    async (heavyIsolation) => {
      const heavy = f.tenants[heavyIsolation].homeDepot;
      const lights = ISOLATIONS.flatMap((i) => [f.tenants[i].homeDepot, f.tenants[i].lowes]).filter(
        (tenant) => tenant.id !== heavy.id,
      );
      const name = `fair_${heavyIsolation}`;
      const order: string[] = [];
      t.jobs.define(name, async () => {
        order.push(getTenant().name);
        await new Promise((resolve) => setTimeout(resolve, 2));
      });
      await t.withTenant(heavy, () =>
        t.jobs.enqueueMany(
          name,
          Array.from({ length: 2000 }, (_, i) => i),
        ),
      );
      // The other tenants' jobs come last.
      for (const tenant of lights) await t.withTenant(tenant, () => t.jobs.enqueue(name, 'light'));
      const worker = await t.jobs.start({ concurrency: CONCURRENCY, prefetch: PREFETCH, pollMs: 50 });
      try {
        await eventually(
          () => lights.every((l) => order.includes(l.name)),
          20_000,
          "the other tenants' jobs",
        );
      } finally {
        await worker.stop();
      }
      for (const light of lights) {
        // within the first two claims: the first, or the next when its claim raced the first
        expect(order.indexOf(light.name), light.name).toBeLessThan(2 * CLAIM);
      }
      expect(order.length).toBeLessThan(2000);
      await t.jobs.cancel({ tenant: heavy.id });
    },
  );

  it('an idle worker queries no tenant one by one: one catalog query per tick covers them all', async () => {
    const worker = await t.jobs.start({ pollMs: 20 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000)); // the start-up sweep of database tenants
      const before = checkouts();
      await new Promise((resolve) => setTimeout(resolve, 1500)); // ≈ 75 ticks
      expect(checkouts() - before).toBe(0);
    } finally {
      await worker.stop();
    }
  });

  it('caps the running jobs of one tenant (tenantConcurrency), leaving room for the others', async () => {
    const heavy = f.tenants.shared.lowes;
    const other = f.tenants.database.lowes;
    let running = 0;
    let peak = 0;
    const done: string[] = [];
    t.jobs.define('capped', async () => {
      const mine = getTenant().id === heavy.id;
      if (mine) peak = Math.max(peak, ++running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (mine) running--;
      done.push(getTenant().name);
    });
    await t.withTenant(heavy, () =>
      t.jobs.enqueueMany(
        'capped',
        Array.from({ length: 30 }, (_, i) => i),
      ),
    );
    await t.withTenant(other, () => t.jobs.enqueueMany('capped', [1, 2]));
    const worker = await t.jobs.start({ concurrency: 8, tenantConcurrency: 2, pollMs: 20 });
    try {
      await eventually(() => done.length === 32, 20_000, 'all capped jobs');
    } finally {
      await worker.stop();
    }
    expect(peak).toBeLessThanOrEqual(2);
    expect(done.indexOf(other.name)).toBeLessThan(10);
  });
});
