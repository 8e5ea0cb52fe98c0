import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError } from '../../src/index.js';
import { columnsSeen, fleetFixture, type FleetFixture } from './helpers.js';

let f: FleetFixture;

beforeAll(async () => {
  f = await fleetFixture('fleet_interrupt', { schema: 24 });
}, 300_000);
afterAll(async () => {
  await f?.close();
});

const byVersion = async () =>
  (
    await f.sql<{ version: string; n: number }>(
      'SELECT version, count(*)::int AS n FROM tenantry.tenant_migration GROUP BY 1 ORDER BY 1',
    )
  ).map((r) => [Number(r.version), r.n]);

describe('interrupted runs resume; concurrent runs do not collide', () => {
  it('stops starting tenants once aborted (Ctrl-C); the rerun finishes exactly the rest', async () => {
    f.write(1, 'tier', "ALTER TABLE customer ADD COLUMN tier text NOT NULL DEFAULT 'basic';");
    const controller = new AbortController();
    const first = await f.tenantry.migrations.run({
      dir: f.dir,
      concurrency: 2,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.phase === 'tenants' && e.done >= 6) controller.abort();
      },
    });
    expect(first.interrupted).toBe(true);
    expect(first.shared.applied).toEqual([1]);
    expect(first.tenants.migrated).toBeGreaterThanOrEqual(6);
    expect(first.tenants.pending).toBeGreaterThan(0);
    expect(first.tenants.migrated + first.tenants.pending).toBe(24);
    expect(await byVersion()).toEqual([
      [0, first.tenants.pending],
      [1, first.tenants.migrated],
    ]);
    const second = await f.tenantry.migrations.run({ dir: f.dir });
    expect(second.shared.applied).toEqual([]);
    expect(second.tenants).toEqual({
      total: first.tenants.pending,
      migrated: first.tenants.pending,
      failed: 0,
      pending: 0,
    });
    expect(await byVersion()).toEqual([[1, 24]]);
    for (const tenant of ['S01', 'S24'])
      expect(await columnsSeen(f.tenantry, tenant, 'customer')).toContain('tier');
  });

  it('a run whose connections die mid-way (as if killed) leaves every tenant whole; the rerun completes', async () => {
    f.write(2, 'score', 'ALTER TABLE customer ADD COLUMN score integer; SELECT pg_sleep(0.05);');
    let killed = false;
    const report = await f.tenantry.migrations.run({
      dir: f.dir,
      concurrency: 3,
      onProgress: (e) => {
        if (e.phase === 'tenants' && e.done >= 4 && !killed) {
          killed = true;
          void f.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenantry-migrate'",
          );
        }
      },
    });
    expect(killed).toBe(true);
    expect(report.tenants.failed).toBeGreaterThan(0);
    // each tenant is at 1 or 2, never half-way: its copy has the column exactly when it is at 2
    const rows = await f.sql<{ name: string; version: string; has: boolean }>(
      `SELECT t.name, m.version, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = format('%I.customer', t.schema_name)::regclass
                                           AND a.attname = 'score' AND NOT a.attisdropped) AS has
       FROM tenantry.tenant t JOIN tenantry.tenant_migration m ON m.tenant_id = t.id`,
    );
    for (const r of rows) expect(r.has, r.name).toBe(r.version === '2');
    const rerun = await f.tenantry.migrations.run({ dir: f.dir });
    expect(rerun.failures).toEqual([]);
    expect(await byVersion()).toEqual([[2, 24]]);
    expect(await f.sql('SELECT version FROM tenantry.app_migration ORDER BY 1')).toEqual([
      { version: '1' },
      { version: '2' },
    ]);
  });

  it('refuses a second run while one holds the migrate lock', async () => {
    f.write(3, 'flag', 'ALTER TABLE customer ADD COLUMN flag boolean;');
    const holder = await f.sql<{ ok: boolean }>('SELECT true AS ok');
    expect(holder).toHaveLength(1);
    const { withClient } = await import('../helpers/db.js');
    await withClient(f.url, async (client) => {
      await client.query("SET application_name = 'other-migrate'");
      await client.query('SELECT pg_advisory_lock(7303446190)');
      const error = await f.tenantry.migrations.run({ dir: f.dir }).catch((e: unknown) => e);
      expect(isTenantryError(error, 'MIGRATION_LOCKED')).toBe(true);
      expect((error as Error).message).toMatch(/other-migrate/);
    });
    expect(await byVersion()).toEqual([[2, 24]]);
  });

  it('two runs started together: one runs, the other is refused or finds nothing to do', async () => {
    const results = await Promise.allSettled([
      f.tenantry.migrations.run({ dir: f.dir, concurrency: 2 }),
      f.tenantry.migrations.run({ dir: f.dir, concurrency: 2 }),
    ]);
    const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(refused.every((e) => isTenantryError(e, 'MIGRATION_LOCKED'))).toBe(true);
    expect(done.reduce((n, r) => n + r.shared.applied.length, 0)).toBe(1);
    expect(done.reduce((n, r) => n + r.tenants.migrated, 0)).toBe(24);
    expect(await byVersion()).toEqual([[3, 24]]);
  });
});
