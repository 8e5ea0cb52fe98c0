import { describe, expect, it } from 'vitest';
import { OTHER_TENANTS, TenantMetrics } from '../src/metrics/tenant-metrics.js';

describe('per-tenant metrics', () => {
  it('sums the tenants beyond the top N under a label no tenant can have, without touching any tenant', () => {
    const m = new TenantMetrics();
    // A tenant really named "other" among the busiest, and two quieter ones.
    for (let i = 0; i < 5; i++) m.observe('other', 0.001, true);
    for (let i = 0; i < 3; i++) m.observe('Acme', 0.001, true);
    m.observe('Quiet1', 0.001, true);
    m.observe('Quiet2', 0.001, false);
    for (let scrape = 0; scrape < 3; scrape++) {
      const snapshot = m.snapshot(2);
      expect(snapshot.get('other')?.queries).toBe(5);
      expect(snapshot.get('Acme')?.queries).toBe(3);
      expect(snapshot.get(OTHER_TENANTS)).toMatchObject({ queries: 2, errors: 1 });
    }
    expect(m.snapshot(10).has(OTHER_TENANTS)).toBe(false);
  });

  it('forgets a dropped tenant, so a new tenant of that name starts from zero', () => {
    const m = new TenantMetrics();
    m.observe('Acme', 0.002, true);
    m.forget('Acme');
    expect(m.snapshot().has('Acme')).toBe(false);
    m.observe('Acme', 0.002, true);
    expect(m.snapshot().get('Acme')?.queries).toBe(1);
  });
});
