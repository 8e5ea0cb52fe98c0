/**
 * cross-tenant: an ordered cross-tenant scan (seed 004's TENANT-WHERE … BY Customer.Name).
 *
 * 1,000 shared tenants × 100 customers (quick: the same data, fewer rounds):
 * - baseline: one plain SQL scan of the base table by the owner (superuser, no RLS), ordered by
 *   name in the "C" collation, all rows read by node-postgres;
 * - ours: `tenantry.crossTenant({ where, sql: 'SELECT … FROM customer', orderBy: 'name' })`,
 *   every row tagged with its tenant, streamed through the k-way merge (batches of tenants, one
 *   statement each, on 4 connections).
 * Reported besides: the same scan with one query per tenant (`batch: false`), the default
 * tenant order, and 100 schema tenants × 100 rows (rows/s).
 * Rounds alternate the sides; each figure is the median of its rounds. Goal: ours ≥ 0.5 × baseline.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createTenantry, generateMasterKey, type CrossTenantOptions, type Tenantry } from '../src/index.js';
import {
  alternate,
  fmtRate,
  ignoreIdleError,
  loadAverage,
  median,
  openDatabase,
  parseArgs,
  printResult,
  roleNames,
  round,
} from './harness.js';
import { forEachLimited } from './load.js';

const BENCH = 'cross-tenant';
const SHARED_TENANTS = 1000;
const SCHEMA_TENANTS = 100;
const ROWS_PER_TENANT = 100;
const GOAL = 0.5;
const COLUMNS = 'cust_num, name, city, balance';

/** Rows per second of one scan; checks the row count and the order. */
async function timeScan(
  expected: number,
  scan: () => AsyncIterable<Record<string, unknown>>,
): Promise<number> {
  const start = performance.now();
  let count = 0;
  let previous = '';
  for await (const row of scan()) {
    const name = row.name as string;
    if (name < previous) throw new Error(`out of order: ${previous} before ${name}`);
    previous = name;
    count++;
  }
  const seconds = (performance.now() - start) / 1000;
  if (count !== expected) throw new Error(`expected ${expected} rows, got ${count}`);
  return count / seconds;
}

/** Rows per second of a scan in the default (tenant) order. */
async function timeTenantOrder(
  expected: number,
  scan: () => AsyncIterable<{ _tenant_id: number }>,
): Promise<number> {
  const start = performance.now();
  let count = 0;
  let previous = -Infinity;
  for await (const row of scan()) {
    if (row._tenant_id < previous) throw new Error('tenants out of order');
    previous = row._tenant_id;
    count++;
  }
  if (count !== expected) throw new Error(`expected ${expected} rows, got ${count}`);
  return count / ((performance.now() - start) / 1000);
}

function crossTenant(tenantry: Tenantry, options: Omit<CrossTenantOptions, 'sql'>) {
  return () => tenantry.crossTenant({ sql: `SELECT ${COLUMNS} FROM customer`, asOperator: true, ...options });
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const rounds = args.quick ? 2 : 7;
  const started = performance.now();
  const loadStart = loadAverage();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  let owner: pg.Pool | undefined;
  let result: Parameters<typeof printResult>[0];
  try {
    console.log(`${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}; load average ${loadStart}`);
    tenantry = await createTenantry({
      databaseUrl: db.url,
      masterKey: generateMasterKey(),
      pool: { budget: 8 },
    });
    db.dropRolesOnClose(...roleNames(tenantry.roles));
    await tenantry.operator.query(
      `CREATE TABLE public.customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL,
         city text NOT NULL, balance int NOT NULL, PRIMARY KEY (tenant_id, cust_num))`,
    );
    await tenantry.tables.multiTenant('public.customer');
    const setup = performance.now();
    const shared = Array.from({ length: SHARED_TENANTS }, (_, i) => `s${String(i + 1).padStart(4, '0')}`);
    const schema = Array.from({ length: SCHEMA_TENANTS }, (_, i) => `x${String(i + 1).padStart(3, '0')}`);
    const t = tenantry;
    await forEachLimited(shared, 16, async (name) => void (await t.tenants.create({ name })));
    for (const name of schema) await t.tenants.create({ name, isolation: 'schema' });
    // Names spread over the alphabet so the merge interleaves every tenant's rows.
    const fill = `SELECT n, md5(%s || '-' || n), 'city' || (n % 17), (n * 7919) % 1000 FROM generate_series(1, ${ROWS_PER_TENANT}) n`;
    await tenantry.operator.query(
      `INSERT INTO public.customer (tenant_id, cust_num, name, city, balance)
       SELECT t.id, f.* FROM tenantry.tenant t CROSS JOIN LATERAL (${fill.replace('%s', 't.id')}) f
       WHERE t.kind = 'regular' AND t.isolation = 'shared'`,
    );
    await forEachLimited(schema, 4, (name) =>
      t.withTenant(
        name,
        async (tdb) => void (await tdb.query(`INSERT INTO customer ${fill.replace('%s', "'" + name + "'")}`)),
      ),
    );
    await tenantry.operator.query('VACUUM ANALYZE public.customer');
    console.log(
      `${SHARED_TENANTS} shared + ${SCHEMA_TENANTS} schema tenants × ${ROWS_PER_TENANT} rows set up in ` +
        `${((performance.now() - setup) / 1000).toFixed(1)} s; ${rounds} rounds, order rotated each round`,
    );

    owner = new pg.Pool({ connectionString: db.url, max: 1 });
    owner.on('error', ignoreIdleError);
    const pool = owner;
    const sharedRows = SHARED_TENANTS * ROWS_PER_TENANT;
    const schemaRows = SCHEMA_TENANTS * ROWS_PER_TENANT;
    const sharedWhere = "name < 't'";
    const baselineSql = `SELECT tenant_id, ${COLUMNS} FROM public.customer ORDER BY name COLLATE "C"`;
    const baseline = () =>
      (async function* () {
        const { rows } = await pool.query<Record<string, unknown>>(baselineSql);
        yield* rows;
      })();
    const sides = [
      { name: 'baseline', run: () => timeScan(sharedRows, baseline) },
      {
        name: 'ours',
        run: () => timeScan(sharedRows, crossTenant(t, { where: sharedWhere, orderBy: 'name' })),
      },
      {
        name: 'per_tenant',
        run: () =>
          timeScan(sharedRows, crossTenant(t, { where: sharedWhere, orderBy: 'name', batch: false })),
      },
      { name: 'by_tenant', run: () => timeTenantOrder(sharedRows, crossTenant(t, { where: sharedWhere })) },
      {
        name: 'schema',
        run: () => timeScan(schemaRows, crossTenant(t, { where: "name >= 'x'", orderBy: 'name' })),
      },
    ];
    for (const side of sides) await side.run(); // warm-up: caches, plans, connections
    const results = await alternate(rounds, sides, (r, rates) =>
      console.log(
        `round ${r}: ${sides.map((s) => `${s.name} ${fmtRate(rates.get(s.name)!)}`).join(' | ')} rows/s`,
      ),
    );
    const rate = (name: string) => median(results.get(name)!);
    const ratio = rate('ours') / rate('baseline');
    const pass = ratio >= GOAL;
    console.log(
      `baseline (owner, one SELECT … ORDER BY name of the base table): ${fmtRate(rate('baseline'))} rows/s`,
    );
    console.log(
      `ours (crossTenant orderBy name, ${SHARED_TENANTS} shared tenants, batched): ${fmtRate(rate('ours'))} rows/s`,
    );
    console.log(
      `  one query per tenant (batch: false):                    ${fmtRate(rate('per_tenant'))} rows/s`,
    );
    console.log(
      `  default order (by tenant), batched:                     ${fmtRate(rate('by_tenant'))} rows/s`,
    );
    console.log(
      `  ${SCHEMA_TENANTS} schema tenants, orderBy name:                       ${fmtRate(rate('schema'))} rows/s`,
    );
    console.log(`ratio ours/baseline: ${ratio.toFixed(3)} (goal ≥ ${GOAL}) ${pass ? 'PASS' : 'FAIL'}`);
    console.log(
      `total time ${((performance.now() - started) / 1000).toFixed(1)} s; load average ${loadStart} at start, ${loadAverage()} at end`,
    );
    result = {
      bench: BENCH,
      unit: 'rows/s',
      baseline: Math.round(rate('baseline')),
      ours: Math.round(rate('ours')),
      ratio: round(ratio),
      goal: GOAL,
      pass,
      schema_rows_per_s: Math.round(rate('schema')),
    };
  } finally {
    await owner?.end();
    await tenantry?.close();
    await db.close();
  }
  printResult(result);
}
