import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError, type MigrationProgress } from '../../src/index.js';
import { columnsSeen, fleetFixture, type FleetFixture } from './helpers.js';

let f: FleetFixture;

beforeAll(async () => {
  f = await fleetFixture('fleet_migrate', { schema: 50, database: 1 });
  f.write(
    1,
    'loyalty',
    `ALTER TABLE customer ADD COLUMN loyalty integer NOT NULL DEFAULT 0;
     CREATE INDEX customer_loyalty ON customer (tenant_id, loyalty);`,
  );
}, 300_000);
afterAll(async () => {
  await f?.close();
});

const versions = async () =>
  new Map(
    (
      await f.sql<{ name: string; version: string; failed_version: string | null; error: string | null }>(
        `SELECT t.name, m.version, m.failed_version, m.error FROM tenantry.tenant t
         JOIN tenantry.tenant_migration m ON m.tenant_id = t.id ORDER BY t.id`,
      )
    ).map((r) => [r.name, r]),
  );

describe('tenantry migrate over 50 schema tenants (and a database tenant)', () => {
  it('a dry run lists every target and changes nothing', async () => {
    const report = await f.tenantry.migrations.run({ dir: f.dir, dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.plan[0]).toEqual({ target: 'shared', from: 0, versions: [1] });
    expect(report.plan.filter((p) => p.target.startsWith('tenant ')).length).toBe(51);
    expect(report.tenants).toMatchObject({ total: 51, migrated: 0 });
    expect(await f.sql('SELECT * FROM tenantry.app_migration')).toEqual([]);
    expect(await columnsSeen(f.tenantry, 'S01', 'customer')).not.toContain('loyalty');
    const all = await versions();
    expect([...all.values()].every((v) => v.version === '0')).toBe(true);
  });

  it('applies to the shared tables and every tenant; one failing tenant is reported, the others are done', async () => {
    // S07 already has an index of that name: its CREATE INDEX fails (42P07)
    const [s07] = await f.sql<{ schema_name: string }>(
      "SELECT schema_name FROM tenantry.tenant WHERE name = 'S07'",
    );
    await f.sql(`CREATE INDEX customer_loyalty ON ${s07!.schema_name}.customer (name)`);
    const events: MigrationProgress[] = [];
    const report = await f.tenantry.migrations.run({
      dir: f.dir,
      concurrency: 4,
      onProgress: (e) => events.push(e),
    });
    expect(report.shared).toEqual({ from: 0, to: 1, applied: [1] });
    expect(report.tenants).toEqual({ total: 51, migrated: 50, failed: 1, pending: 0 });
    expect(report.failures).toHaveLength(1);
    expect(report.failures[0]).toMatchObject({ tenant: 'S07', version: 1, sqlstate: '42P07' });
    expect(report.failures[0]!.error).toMatch(/customer_loyalty.*already exists/);
    const all = await versions();
    expect(all.get('S07')).toMatchObject({ version: '0', failed_version: '1' });
    expect(all.get('S07')!.error).toMatch(/already exists/);
    for (const [name, v] of all) if (name !== 'S07') expect(v.version, name).toBe('1');
    expect(events.filter((e) => e.phase === 'tenants').at(-1)).toMatchObject({
      done: 51,
      failed: 1,
      total: 51,
    });
    // the failed tenant kept its old shape (its transaction rolled back)
    expect(await columnsSeen(f.tenantry, 'S07', 'customer')).not.toContain('loyalty');
  });

  it('the new column is selectable by every tenant through its session (app and tenant identity)', async () => {
    for (const tenant of ['HomeDepot', 'S01', 'S50', 'D1']) {
      for (const identity of ['app', 'tenant'] as const) {
        expect(await columnsSeen(f.tenantry, tenant, 'customer', identity), `${tenant} ${identity}`).toEqual([
          'cust_num',
          'name',
          'state',
          'loyalty',
        ]);
      }
      await f.tenantry.withTenant(tenant, async (db) => {
        await db.query('UPDATE customer SET loyalty = 7 WHERE cust_num = 1');
        const { rows } = await db.query<{ loyalty: number }>('SELECT loyalty FROM customer');
        expect(rows).toEqual([{ loyalty: 7 }]);
      });
    }
    // the index reached the tenants' copies too
    const [s01] = await f.sql<{ schema_name: string }>(
      "SELECT schema_name FROM tenantry.tenant WHERE name = 'S01'",
    );
    const idx = await f.sql('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [
      s01!.schema_name,
      'customer_loyalty',
    ]);
    expect(idx).toHaveLength(1);
  });

  it('a rerun after the fix migrates only the failed tenant', async () => {
    const [s07] = await f.sql<{ schema_name: string }>(
      "SELECT schema_name FROM tenantry.tenant WHERE name = 'S07'",
    );
    await f.sql(`DROP INDEX ${s07!.schema_name}.customer_loyalty`);
    const report = await f.tenantry.migrations.run({ dir: f.dir });
    expect(report.shared.applied).toEqual([]);
    expect(report.tenants).toEqual({ total: 1, migrated: 1, failed: 0, pending: 0 });
    expect(report.failures).toEqual([]);
    const all = await versions();
    expect([...all.values()].every((v) => v.version === '1' && v.failed_version === null)).toBe(true);
    expect(await columnsSeen(f.tenantry, 'S07', 'customer')).toContain('loyalty');
    const status = await f.tenantry.migrations.status({ dir: f.dir });
    expect(status).toMatchObject({ current: 1, pending: [], latest: 1, sharedTenants: 2 });
    expect(status.tenants.every((t) => t.version === 1)).toBe(true);
  });

  it('takes TypeScript migrations, and refuses edited or missing applied ones', async () => {
    const report = await f.tenantry.migrations.run({
      dir: f.dir,
      migrations: [
        {
          version: 2,
          name: 'note',
          shared: async (db) => {
            expect(db.scope).toBe('shared');
            await db.query('ALTER TABLE customer ADD COLUMN note text');
          },
          tenant: async (db) => {
            await db.query('ALTER TABLE customer ADD COLUMN note text');
          },
        },
      ],
      concurrency: 8,
    });
    expect(report.failures).toEqual([]);
    expect(report.tenants.migrated).toBe(51);
    expect(await columnsSeen(f.tenantry, 'S33', 'customer')).toContain('note');
    f.write(1, 'loyalty', 'ALTER TABLE customer ADD COLUMN loyalty integer;');
    const edited = await f.tenantry.migrations.run({ dir: f.dir }).catch((e: unknown) => e);
    expect(isTenantryError(edited, 'MIGRATION_MISMATCH')).toBe(true);
    expect((edited as Error).message).toMatch(/migration 1 .*changed after it was applied/);
  });
});
