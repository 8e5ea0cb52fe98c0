/**
 * scoped-query: throughput of a tenant-scoped point query through tenantry against the same
 * query on a raw pg.Pool.
 *
 * - baseline: raw `pg.Pool` (max 8) as the superuser (no RLS), tenant id in the WHERE clause.
 * - ours: `tenantry.withTenant(name, db => db.query(...))`, pool max 8, RLS filtering.
 * - naive (extra): BEGIN; set_config(tenant); query; COMMIT on a pg.Pool as the app role —
 *   the four-round-trip way to get a transaction-local tenant, which tenantry avoids.
 * - prepared (extra): the baseline with a named prepared statement — tenantry prepares the
 *   application's parameterised statements once per connection, so this is the like-for-like
 *   figure for what that saves; printed next to the baseline, not instead of it.
 *
 * 8 concurrent async clients each query random tenants for a fixed time per round; rounds
 * rotate the order of the sides; each side's figure is the median of its rounds.
 */
import pg from 'pg';
import { createTenantry, type Tenantry } from '../src/index.js';
import {
  alternate,
  fmtRate,
  median,
  openDatabase,
  parseArgs,
  printResult,
  randomInt,
  ignoreIdleError,
  loadAverage,
  pairedRatio,
  roleNames,
  round,
  throughput,
  urlAs,
  type BenchDatabase,
} from './harness.js';
import { WireCounter } from './wire-counter.js';

const BENCH = 'scoped-query';
const TENANTS = 100;
const ROWS_PER_TENANT = 100;
const CLIENTS = 8;
const POOL_MAX = 8;
const GOAL = 0.9;

const BASELINE_SQL = 'SELECT name FROM customer WHERE tenant_id = $1 AND cust_num = $2';
const TENANT_SQL = 'SELECT name FROM customer WHERE cust_num = $1';

interface TenantInfo {
  readonly id: number;
  readonly name: string;
}

/** The name every row carries, so each side checks it got the right tenant's row. */
function expectedName(tenantId: number, custNum: number): string {
  return `c${tenantId}-${custNum}`;
}

function check(rows: readonly { name: string }[], tenant: TenantInfo, custNum: number, side: string): void {
  if (rows.length !== 1 || rows[0]?.name !== expectedName(tenant.id, custNum)) {
    throw new Error(
      `${side}: expected one row ${expectedName(tenant.id, custNum)}, got ${JSON.stringify(rows)}`,
    );
  }
}

/** The three ways to run one tenant-scoped query. */
interface Runners {
  baseline(tenant: TenantInfo, custNum: number): Promise<void>;
  ours(tenant: TenantInfo, custNum: number): Promise<void>;
  naive(tenant: TenantInfo, custNum: number): Promise<void>;
  prepared(tenant: TenantInfo, custNum: number): Promise<void>;
}

function makeRunners(tenantry: Tenantry, basePool: pg.Pool, appPool: pg.Pool): Runners {
  return {
    async baseline(tenant, custNum) {
      const { rows } = await basePool.query<{ name: string }>(BASELINE_SQL, [tenant.id, custNum]);
      check(rows, tenant, custNum, 'baseline');
    },
    async prepared(tenant, custNum) {
      const { rows } = await basePool.query<{ name: string }>({
        name: 'bench_point',
        text: BASELINE_SQL,
        values: [tenant.id, custNum],
      });
      check(rows, tenant, custNum, 'prepared');
    },
    async ours(tenant, custNum) {
      const { rows } = await tenantry.withTenant(tenant.name, (db) =>
        db.query<{ name: string }>(TENANT_SQL, [custNum]),
      );
      check(rows, tenant, custNum, 'ours');
    },
    async naive(tenant, custNum) {
      const client = await appPool.connect();
      let failed: Error | undefined;
      try {
        await client.query('BEGIN');
        await client.query("SELECT set_config('tenantry.tenant', $1, true)", [String(tenant.id)]);
        const { rows } = await client.query<{ name: string }>(TENANT_SQL, [custNum]);
        await client.query('COMMIT');
        check(rows, tenant, custNum, 'naive');
      } catch (error) {
        failed = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.release(failed);
      }
    },
  };
}

/** Counts round trips (ReadyForQuery messages) per query of each side through a proxy. */
async function countRoundTrips(
  db: BenchDatabase,
  appPassword: string,
  appRole: string,
  tenants: readonly TenantInfo[],
): Promise<Record<keyof Runners, { roundTrips: number; clientMessages: number }>> {
  const target = new URL(db.url);
  const proxy = await WireCounter.start(target.hostname || 'localhost', Number(target.port || 5432));
  const url = proxy.redirect(db.url);
  const tenantry = await createTenantry({
    databaseUrl: url,
    install: false,
    pool: { budget: 1 },
    catalogPollMs: 3_600_000,
  });
  const basePool = new pg.Pool({ connectionString: url, max: 1 });
  const appPool = new pg.Pool({ connectionString: urlAs(url, appRole, appPassword), max: 1 });
  for (const pool of [basePool, appPool]) pool.on('error', ignoreIdleError);
  const runners = makeRunners(tenantry, basePool, appPool);
  const queries = 200;
  const result = {} as Record<keyof Runners, { roundTrips: number; clientMessages: number }>;
  try {
    for (const side of ['baseline', 'ours', 'naive', 'prepared'] as const) {
      await runners[side](tenants[0]!, 1); // opens the connection (its startup is not counted)
      proxy.reset();
      for (let i = 0; i < queries; i++) {
        await runners[side](tenants[i % tenants.length]!, 1 + (i % ROWS_PER_TENANT));
      }
      const counts = proxy.counts();
      result[side] = {
        roundTrips: counts.readyForQuery / queries,
        clientMessages: counts.clientMessages / queries,
      };
    }
  } finally {
    await tenantry.close();
    await Promise.all([basePool.end(), appPool.end()]);
    await proxy.close();
  }
  return result;
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const rounds = args.quick ? 3 : 7;
  const roundMs = args.quick ? 1_500 : 5_000;
  const warmupMs = args.quick ? 500 : 2_000;

  const started = Date.now();
  const loadStart = loadAverage();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  let basePool: pg.Pool | undefined;
  let appPool: pg.Pool | undefined;
  let summary: Parameters<typeof printResult>[0];
  try {
    console.log(`${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}; load average ${loadStart}`);
    tenantry = await createTenantry({ databaseUrl: db.url, pool: { budget: POOL_MAX } });
    db.dropRolesOnClose(...roleNames(tenantry.roles));

    await tenantry.operator.query(
      `CREATE TABLE public.customer (
         tenant_id int, cust_num int, name text, PRIMARY KEY (tenant_id, cust_num))`,
    );
    await tenantry.tables.multiTenant('public.customer');
    const tenants: TenantInfo[] = [];
    for (let i = 1; i <= TENANTS; i++) {
      const tenant = await tenantry.tenants.create({ name: `tenant${String(i).padStart(3, '0')}` });
      tenants.push({ id: tenant.id, name: tenant.name });
    }
    // As the superuser (RLS does not apply), with the tenant id written out.
    await tenantry.operator.query(
      `INSERT INTO public.customer (tenant_id, cust_num, name)
       SELECT t.id, n, 'c' || t.id || '-' || n
       FROM tenantry.tenant t CROSS JOIN generate_series(1, $1::int) AS n
       WHERE t.kind = 'regular'`,
      [ROWS_PER_TENANT],
    );
    await tenantry.operator.query('VACUUM ANALYZE public.customer');
    const { rows: secret } = await tenantry.operator.query<{ value: string }>(
      "SELECT value FROM tenantry.secret WHERE name = 'app_password'",
    );
    const appPassword = secret[0]?.value;
    if (appPassword === undefined) throw new Error('tenantry.secret has no app_password');

    basePool = new pg.Pool({ connectionString: db.url, max: POOL_MAX });
    appPool = new pg.Pool({
      connectionString: urlAs(db.url, tenantry.roles.app, appPassword),
      max: POOL_MAX,
    });
    for (const pool of [basePool, appPool]) pool.on('error', ignoreIdleError);
    const runners = makeRunners(tenantry, basePool, appPool);
    console.log(
      `${TENANTS} tenants × ${ROWS_PER_TENANT} rows; ${CLIENTS} concurrent clients, pool max ${POOL_MAX}; ` +
        `${rounds} rounds × ${roundMs / 1000} s per side, order rotated each round`,
    );

    const trips = await countRoundTrips(db, appPassword, tenantry.roles.app, tenants);
    console.log(
      `round trips per query (ReadyForQuery messages counted on the wire, 200 sequential queries each): ` +
        `baseline ${trips.baseline.roundTrips}, ours ${trips.ours.roundTrips}, naive ${trips.naive.roundTrips}`,
    );
    console.log(
      `  protocol messages sent per query: baseline ${trips.baseline.clientMessages}, ` +
        `ours ${trips.ours.clientMessages} (prelude Bind/Execute + query Bind/Describe/Execute of statements prepared once per connection, one Sync), ` +
        `naive ${trips.naive.clientMessages}`,
    );

    const side = (name: keyof Runners) => ({
      name,
      run: () => throughputOf(roundMs, (tenant, custNum) => runners[name](tenant, custNum), tenants),
    });
    const sides = [side('baseline'), side('ours'), side('naive'), side('prepared')];
    for (const s of sides) await throughputOf(warmupMs, (t, n) => runners[s.name](t, n), tenants);

    const results = await alternate(rounds, sides, (r, rates) =>
      console.log(
        `round ${r}: baseline ${fmtRate(rates.get('baseline')!)} q/s | ours ${fmtRate(rates.get('ours')!)} q/s | ` +
          `naive ${fmtRate(rates.get('naive')!)} q/s | prepared ${fmtRate(rates.get('prepared')!)} q/s`,
      ),
    );
    const baseline = median(results.get('baseline')!);
    const ours = median(results.get('ours')!);
    const naive = median(results.get('naive')!);
    const prepared = median(results.get('prepared')!);
    const ratio = ours / baseline;
    const paired = pairedRatio(results.get('baseline')!, results.get('ours')!);
    const pass = ratio >= GOAL;
    const loadEnd = loadAverage();
    console.log(
      `baseline (raw pg.Pool, superuser, tenant_id in WHERE, 1 round trip): ${fmtRate(baseline)} queries/s (median of ${rounds})`,
    );
    console.log(
      `ours (withTenant + db.query, RLS, ${trips.ours.roundTrips} round trip):            ${fmtRate(ours)} queries/s (median of ${rounds})`,
    );
    console.log(
      `ratio ours/baseline: ${ratio.toFixed(3)} (goal ≥ ${GOAL}) ${pass ? 'PASS' : 'FAIL'}; ` +
        `median of per-round ratios ${paired.toFixed(3)}`,
    );
    console.log(
      `naive (BEGIN; set_config; query; COMMIT = ${trips.naive.roundTrips} round trips): ${fmtRate(naive)} queries/s ` +
        `= ${(naive / baseline).toFixed(3)} × baseline; ours is ${(ours / naive).toFixed(2)}× naive`,
    );
    console.log(
      `prepared (raw pg.Pool, superuser, named prepared statement): ${fmtRate(prepared)} queries/s; ` +
        `ours/prepared ${(ours / prepared).toFixed(3)}`,
    );
    console.log(
      `total time ${((Date.now() - started) / 1000).toFixed(1)} s; load average ${loadStart} at start, ${loadEnd} at end`,
    );
    summary = {
      bench: BENCH,
      unit: 'queries/s',
      baseline: Math.round(baseline),
      ours: Math.round(ours),
      ratio: round(ratio),
      goal: GOAL,
      pass,
      round_trips_baseline: trips.baseline.roundTrips,
      round_trips_ours: trips.ours.roundTrips,
      round_trips_naive: trips.naive.roundTrips,
      ratio_paired: round(paired),
      naive: Math.round(naive),
      naive_ratio: round(naive / baseline),
      ours_vs_naive: round(ours / naive),
      prepared: Math.round(prepared),
      ours_vs_prepared: round(ours / prepared),
      rounds,
      round_seconds: roundMs / 1000,
      clients: CLIENTS,
      baseline_rounds: results.get('baseline')!.map(Math.round),
      ours_rounds: results.get('ours')!.map(Math.round),
      naive_rounds: results.get('naive')!.map(Math.round),
      load_start: loadStart,
      load_end: loadEnd,
      quick: args.quick,
    };
  } finally {
    await tenantry?.close();
    await basePool?.end();
    await appPool?.end();
    await db.close();
  }
  printResult(summary);
}

/** Queries per second of `op` over random tenants and customers with {@link CLIENTS} loops. */
async function throughputOf(
  durationMs: number,
  op: (tenant: TenantInfo, custNum: number) => Promise<void>,
  tenants: readonly TenantInfo[],
): Promise<number> {
  return throughput(CLIENTS, durationMs, () =>
    op(tenants[randomInt(0, tenants.length - 1)]!, randomInt(1, ROWS_PER_TENANT)),
  );
}
