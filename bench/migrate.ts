/**
 * migrate: one migration — `ALTER TABLE … ADD COLUMN` plus one index — over 1,000 schema
 * tenants (quick: 100), each with the provision bench's application schema (20 tables, a
 * primary key and two indexes each: 20,000 tables in all at full size).
 *
 * - baseline: the django-tenants way — one connection, tenant after tenant, `SET search_path`
 *   to the tenant's schema and the same two statements, each tenant its own transaction (one
 *   transaction over all schemas runs out of max_locks_per_transaction). It does nothing else:
 *   tenant-facing views do not show the new column afterwards.
 * - ours: `tenantry.migrations.run()` with the default concurrency (4): the shared tables, the
 *   template, then every tenant in its own transaction with its view, privileges and version
 *   record kept in line, under the migrate lock.
 *
 * Goal: ours ≤ 60 s for 1,000 tenants, i.e. ≤ 60 ms per tenant (the quick run is judged per
 * tenant), with no failure and the column visible to a tenant's session afterwards.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createTenantry, generateMasterKey, type CatalogRoles, type Tenantry } from '../src/index.js';
import { appMigration, installAppSchema } from './provision.js';
import { loadAverage, openDatabase, parseArgs, round } from './harness.js';
import { dropTenantryRolesOnClose, forEachLimited, printJsonLine } from './load.js';

const BENCH = 'migrate';
const GOAL_MS_PER_TENANT = 60;
const CONCURRENCY = 4;
const q = pg.escapeIdentifier;

const MIGRATION = (column: string) =>
  `ALTER TABLE t0 ADD COLUMN ${column} text; CREATE INDEX t0_${column} ON t0 (tenant_id, ${column});`;

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const tenants = args.quick ? 100 : 1000;
  const started = performance.now();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  let roles: CatalogRoles | undefined;
  let result: Parameters<typeof printJsonLine>[0] | undefined;
  try {
    tenantry = await createTenantry({ databaseUrl: db.url, masterKey: generateMasterKey() });
    roles = tenantry.roles;
    console.log(
      `${BENCH}: ${db.where}, PostgreSQL ${db.serverVersion}, ${tenants} schema tenants × 20 tables`,
    );
    await installAppSchema(tenantry);
    const setupStart = performance.now();
    const t = tenantry;
    await forEachLimited(
      Array.from({ length: tenants }, (_, i) => i),
      4,
      async (i) => {
        await t.tenants.create({ name: `s${i}`, isolation: 'schema' });
        if ((i + 1) % Math.max(1, tenants / 10) === 0) console.log(`  created ${i + 1}/${tenants} tenants…`);
      },
    );
    const setupS = (performance.now() - setupStart) / 1000;
    console.log(`setup: ${tenants} schema tenants in ${setupS.toFixed(1)} s`);
    const { rows: schemas } = await tenantry.operator.query<{ s: string }>(
      "SELECT schema_name AS s FROM tenantry.tenant WHERE isolation = 'schema' ORDER BY id",
    );

    const naive = new pg.Client({ connectionString: db.url });
    await naive.connect();
    const baseStart = performance.now();
    try {
      await naive.query(`BEGIN; ${MIGRATION('naive_note')} COMMIT;`);
      for (const { s } of schemas) {
        await naive.query(
          `BEGIN; SET LOCAL search_path = ${q(s)}, public; ${MIGRATION('naive_note')} COMMIT;`,
        );
      }
    } finally {
      await naive.end();
    }
    const baselineS = (performance.now() - baseStart) / 1000;
    console.log(`baseline (one connection, tenant after tenant, no views): ${baselineS.toFixed(2)} s`);
    // (untimed) the baseline's column goes again, so ours starts from the same shape
    await tenantry.operator.query(
      `DO $$ DECLARE s name; BEGIN
         FOR s IN SELECT schema_name FROM tenantry.tenant WHERE isolation = 'schema' UNION ALL SELECT 'public' LOOP
           EXECUTE format('ALTER TABLE %I.t0 DROP COLUMN naive_note', s);
         END LOOP; END $$`,
    );

    const oursStart = performance.now();
    const report = await tenantry.migrations.run({
      migrations: [
        appMigration(),
        { version: 2, name: 'note', shared: MIGRATION('note'), tenant: MIGRATION('note') },
      ],
      concurrency: CONCURRENCY,
    });
    const oursS = (performance.now() - oursStart) / 1000;
    const seen = await tenantry.withTenant('s0', async (db2) =>
      (await db2.query('SELECT * FROM t0 LIMIT 0')).fields.map((f) => f.name),
    );
    const visible = seen.includes('note');
    const perTenantMs = (oursS * 1000) / tenants;
    const pass =
      report.failures.length === 0 &&
      report.tenants.migrated === tenants &&
      visible &&
      perTenantMs <= GOAL_MS_PER_TENANT;
    const ratio = oursS / baselineS;
    console.log(
      `ours (tenantry migrate, concurrency ${CONCURRENCY}): ${oursS.toFixed(2)} s, ${report.tenants.migrated} migrated, ` +
        `${report.failures.length} failed, column visible to a tenant session: ${visible}`,
    );
    console.log(
      `baseline ${baselineS.toFixed(2)} s, ours ${oursS.toFixed(2)} s, ratio ours/baseline ${ratio.toFixed(3)}; ` +
        `${perTenantMs.toFixed(1)} ms per tenant, goal ≤ ${GOAL_MS_PER_TENANT} ms per tenant (60 s / 1,000) → ${pass ? 'PASS' : 'FAIL'}; load average ${loadAverage()}`,
    );
    console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
    result = {
      bench: BENCH,
      unit: 's',
      baseline: round(baselineS, 2),
      ours: round(oursS, 2),
      ratio: round(ratio),
      goal: `<= 60 s for 1,000 schema tenants (<= ${GOAL_MS_PER_TENANT} ms/tenant)`,
      pass,
      tenants,
      ours_ms_per_tenant: round(perTenantMs, 2),
      baseline_ms_per_tenant: round((baselineS * 1000) / tenants, 2),
      failures: report.failures.length,
      column_visible: visible,
      concurrency: CONCURRENCY,
      setup_s: round(setupS, 1),
      load: loadAverage(),
      quick: args.quick,
    };
  } finally {
    await tenantry?.close();
    await dropTenantryRolesOnClose(db, roles).catch(() => undefined);
    await db.close();
  }
  if (result) printJsonLine(result);
}
