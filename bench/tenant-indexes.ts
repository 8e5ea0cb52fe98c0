/**
 * tenant-indexes: what tenant indexes cost everyone. 1,000 shared tenants (quick: 200) with 100
 * rows each in one table; every tenant adds its own extra column `score` and a tenant index on
 * it (tenantry.create_tenant_index), so the table ends up with one index per tenant. Measured
 * before and after: the planning time of one tenant's query through its view, and the insert
 * rate into the table. This is what the per-table cap (max_tenant_indexes_per_table, default
 * 200) protects against; the bench raises the cap for the run.
 */
import { performance } from 'node:perf_hooks';
import { createTenantry, type Tenantry } from '../src/index.js';
import { median, openDatabase, parseArgs, round } from './harness.js';
import { dropTenantryRolesOnClose, printJsonLine } from './load.js';

const BENCH = 'tenant-indexes';

async function planningMs(t: Tenantry, tenant: string, samples: number): Promise<number> {
  const times: number[] = [];
  await t.withTenant(tenant, async (db) => {
    for (let i = 0; i < samples; i++) {
      const { rows } = await db.query<{ 'QUERY PLAN': string }>(
        'EXPLAIN (ANALYZE, SUMMARY) SELECT name FROM customer WHERE score = 5',
      );
      const line = rows.map((r) => r['QUERY PLAN']).find((l) => l.startsWith('Planning Time'));
      times.push(Number(/([\d.]+) ms/.exec(line ?? '')?.[1] ?? Number.NaN));
    }
  });
  return median(times);
}

let next = 1_000_000;

async function insertRate(t: Tenantry, tenants: readonly string[], seconds: number): Promise<number> {
  let n = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < end) {
        const tenant = tenants[n % tenants.length] as string;
        const id = next++;
        await t.withTenant(tenant, (db) =>
          db.query("INSERT INTO customer (cust_num, name) VALUES ($1, 'x')", [id]),
        );
        n++;
      }
    }),
  );
  return n / seconds;
}

/** Runs the benchmark (`npm run bench -- tenant-indexes [--quick]`). */
export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const count = args.quick ? 200 : 1000;
  const seconds = args.quick ? 3 : 10;
  const db = await openDatabase(BENCH);
  let t: Tenantry | undefined;
  try {
    t = await createTenantry({ databaseUrl: db.url, pool: { budget: 8 } });
    await dropTenantryRolesOnClose(db, t.roles);
    await t.operator.query(
      'CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, cust_num))',
    );
    await t.tables.multiTenant('public.customer');
    const tenants: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = `T${i}`;
      tenants.push(name);
      await t.tenants.create({ name });
      await t.withTenant(name, async (d) => {
        await d.query("SELECT tenantry.add_tenant_column('customer', 'score', 'integer')");
        await d.query(
          "INSERT INTO customer (cust_num, name, score) SELECT g, 'c' || g, g % 10 FROM generate_series(1, 100) g",
        );
      });
    }
    await t.operator.query('ANALYZE customer');
    console.log(`${BENCH}: ${count} tenants × 100 rows, PostgreSQL ${db.serverVersion}`);
    const planBefore = await planningMs(t, 'T0', 50);
    const insertBefore = await insertRate(t, tenants, seconds);
    await t.operator.query(
      `UPDATE tenantry.setting SET value = '${count + 10}' WHERE name = 'max_tenant_indexes_per_table'`,
    );
    const started = performance.now();
    for (const tenant of tenants) {
      await t.withTenant(tenant, (d) =>
        d.query("SELECT tenantry.create_tenant_index('customer', ARRAY['score'])"),
      );
    }
    const buildSeconds = (performance.now() - started) / 1000;
    await t.operator.query('ANALYZE customer');
    const planAfter = await planningMs(t, 'T0', 50);
    const insertAfter = await insertRate(t, tenants, seconds);
    console.log(
      `planning time of one tenant's query: ${planBefore} ms without tenant indexes, ${planAfter} ms with ${count}`,
    );
    console.log(
      `inserts: ${Math.round(insertBefore)} rows/s without, ${Math.round(insertAfter)} rows/s with ${count} indexes`,
    );
    console.log(`building ${count} tenant indexes took ${round(buildSeconds, 1)} s`);
    printJsonLine({
      bench: BENCH,
      unit: 'ms planning',
      baseline: round(planBefore),
      ours: round(planAfter),
      ratio: round(planAfter / planBefore),
      goal: 'report',
      pass: true,
      tenant_indexes: count,
      insert_rows_per_s_without: Math.round(insertBefore),
      insert_rows_per_s_with: Math.round(insertAfter),
      insert_ratio: round(insertAfter / insertBefore),
      build_seconds: round(buildSeconds, 1),
      quick: args.quick,
    });
  } finally {
    await t?.close();
    await db.close();
  }
}
