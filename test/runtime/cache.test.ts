import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, isTenantryError, type Tenantry } from '../../src/index.js';
import { ISOLATIONS, eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

let f: RuntimeFixture;
let t: Tenantry;

beforeAll(async () => {
  f = await runtimeFixture('rt_cache');
  t = f.tenantry;
});

afterAll(async () => {
  await f?.tenantry.close();
});

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
    return 'ok';
  } catch (error) {
    return isTenantryError(error) ? error.code : String(error);
  }
};

describe('tenant-scoped caches', () => {
  it.each(ISOLATIONS)('the same key in two %s tenants never collides', async (isolation) => {
    const cache = t.cache<string>('names', { max: 10 });
    const { homeDepot, lowes } = f.tenants[isolation];
    await t.withTenant(homeDepot, async () => cache.set('customer:1', 'Albert Hall'));
    await t.withTenant(lowes, async () => cache.set('customer:1', 'Fred Smith'));
    expect(await t.withTenant(homeDepot, async () => cache.get('customer:1'))).toBe('Albert Hall');
    expect(await t.withTenant(lowes, async () => cache.get('customer:1'))).toBe('Fred Smith');
    // One tenant cannot see, count, delete or clear another's entries.
    await t.withTenant(lowes, async () => {
      expect(cache.has('customer:2')).toBe(false);
      cache.clear();
      expect(cache.size).toBe(0);
    });
    expect(await t.withTenant(homeDepot, async () => cache.get('customer:1'))).toBe('Albert Hall');
    expect(await t.withTenant(homeDepot, async () => cache.size)).toBe(1);
  });

  it('refuses to be used outside a tenant context', () => {
    const cache = t.cache<string>('names', { max: 10 });
    expect(codeOf(() => cache.get('k'))).toBe('TENANTRY_ERR_NO_TENANT');
    expect(codeOf(() => cache.set('k', 'v'))).toBe('TENANTRY_ERR_NO_TENANT');
  });

  it('fetch loads once for concurrent misses, per tenant', async () => {
    const cache = t.cache<string>('loaded', { max: 10 });
    let loads = 0;
    const load = async (key: string) => {
      loads++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return `${key}@${loads}`;
    };
    const { homeDepot, lowes } = f.tenants.shared;
    const values = await t.withTenant(homeDepot, () =>
      Promise.all([cache.fetch('a', load), cache.fetch('a', load), cache.fetch('a', load)]),
    );
    expect(new Set(values).size).toBe(1);
    expect(loads).toBe(1);
    await t.withTenant(lowes, () => cache.fetch('a', load));
    expect(loads).toBe(2);
    expect(await t.withTenant(homeDepot, () => cache.fetch('a', load))).toBe(values[0]);
  });

  it('evicts the least recently used entry of a tenant beyond max, and expires entries after ttl', async () => {
    const small = t.cache<number>('small', { max: 2 });
    const short = t.cache<number>('short', { max: 10, ttl: 50 });
    await t.withTenant(f.tenants.shared.homeDepot, async () => {
      small.set('a', 1).set('b', 2);
      small.get('a');
      small.set('c', 3);
      expect([small.has('a'), small.has('b'), small.has('c')]).toEqual([true, false, true]);
      short.set('x', 1);
      expect(short.get('x')).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 80));
      expect(short.get('x')).toBeUndefined();
    });
  });

  it("a tenant's entries vanish when it is disabled, and stay gone once it is enabled again", async () => {
    const cache = t.cache<string>('lifecycle', { max: 10 });
    const { homeDepot, lowes } = f.tenants.schema;
    await t.withTenant(homeDepot, async () => cache.set('k', 'homeDepot'));
    await t.withTenant(lowes, async () => cache.set('k', 'lowes'));
    expect(cache.stats()).toEqual({ tenants: 2, entries: 2 });
    await t.tenants.disable(homeDepot.id);
    await eventually(() => cache.stats().tenants === 1, 2000, 'the disabled tenant to leave the cache');
    await t.tenants.enable(homeDepot.id);
    expect(await t.withTenant(homeDepot, async () => cache.get('k'))).toBeUndefined();
    expect(await t.withTenant(lowes, async () => cache.get('k'))).toBe('lowes');
  });

  it("a dropped tenant's entries vanish", async () => {
    const cache = t.cache<string>('dropped', { max: 10 });
    const doomed = await t.tenants.create({ name: 'Doomed_cache' });
    await t.withTenant(doomed, async () => cache.set('k', 'v'));
    expect(cache.stats().entries).toBe(1);
    await t.tenants.drop(doomed.id, { force: true });
    expect(cache.stats().entries).toBe(0);
  });

  it('rejects bad names and options, and different options for an existing name', () => {
    const code = (fn: () => unknown) => codeOf(fn);
    expect(code(() => t.cache('1bad', { max: 1 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(code(() => t.cache('ok', { max: 0 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(code(() => t.cache('ok', { max: 1, ttl: -5 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(code(() => t.cache('ok', { max: 1.5 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(code(() => t.cache('names', { max: 11 }))).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    expect(t.cache('names', { max: 10 })).toBe(t.cache('names', { max: 10 }));
  });

  it('with notify, a change in one process drops the entry in another within 1 s', async () => {
    const other = await createTenantry({ databaseUrl: f.url, masterKey: f.key, install: false });
    try {
      const here = t.cache<string>('prices', { max: 10, notify: true });
      const there = other.cache<string>('prices', { max: 10, notify: true });
      const { homeDepot, lowes } = f.tenants.shared;
      // (a notify cache keeps nothing until its process listens)
      await eventually(
        () => other.withTenant(homeDepot, async () => there.set('sku', 'old').get('sku') === 'old'),
        5000,
        'the other process to listen',
      );
      await other.withTenant(lowes, async () => there.set('sku', 'lowes-price'));
      await t.withTenant(homeDepot, async () => here.set('sku', 'new'));
      const started = Date.now();
      await eventually(
        () => other.withTenant(homeDepot, async () => there.get('sku') === undefined),
        1000,
        'the entry to be dropped',
      );
      expect(Date.now() - started).toBeLessThan(1000);
      // Only that tenant's key went.
      expect(await other.withTenant(lowes, async () => there.get('sku'))).toBe('lowes-price');
    } finally {
      await other.close();
    }
  });
});
