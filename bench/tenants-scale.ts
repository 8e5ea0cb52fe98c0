/**
 * tenants-scale: many tenants on a server with max_connections=100.
 *
 * 10,000 shared tenants, each with its own login role (quick: 1,000); 20,000 requests
 * (quick: 2,000) whose tenants follow a Zipf(1.1) sequence from a fixed seed, run by 64
 * concurrent async clients. Sides, each on the same sequence:
 *
 * - naive (baseline, the seed-002 pattern): one `pg.Pool` (max 5) per tenant credential, created
 *   lazily on the tenant's first request; each request `SELECT name FROM customer WHERE cust_num = $1`
 *   as the tenant's role (row-level security resolves the tenant from the role, no SET).
 * - ours: tenantry with its default pool settings, `withTenant(name, …)` — the library's
 *   default identity, the shared application role with a transaction-local tenant setting,
 *   through one bounded pool of pools.
 * - ours_role (extra): the same with `identity: 'tenant'` (the seed-002 per-tenant roles behind
 *   tenantry's budget). Every connection then belongs to one tenant, so a Zipf tail of thousands
 *   of tenants means a new backend for most requests: bounded and error-free, but slow.
 * - single: all requests for one tenant through tenantry (`identity: 'app'`): the p99 the goal
 *   is relative to.
 *
 * Every side starts cold (naive: no pools; tenantry: a fresh instance). Errors are counted by
 * code (SQLSTATE 53300 is too_many_connections); client backends are sampled every 20 ms from a
 * connection of their own (which is not counted). Goal for tenantry: 0 errors, at most 90 backend
 * connections, p99 at most 3 × the single-tenant p99.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  createTenantry,
  generateMasterKey,
  type CatalogRoles,
  type Identity,
  type Tenantry,
} from '../src/index.js';
import {
  fmtRate,
  ignoreIdleError,
  median,
  openDatabase,
  parseArgs,
  round,
  urlAs,
  withClient,
  type BenchDatabase,
} from './harness.js';
import {
  BackendSampler,
  dropTenantryRolesOnClose,
  fmtMs,
  forEachLimited,
  percentile,
  printJsonLine,
  runSequence,
  zipfSequence,
  type LoadResult,
} from './load.js';

const BENCH = 'tenants-scale';
const CONCURRENCY = 64;
const ZIPF_S = 1.1;
const SEED = 0x5eed_0002;
const NAIVE_POOL_MAX = 5;
const ROWS_PER_TENANT = 10;
/** Concurrent `tenants.create()` calls on the one setup instance (its operator pool has 4 connections). */
const CREATE_CONCURRENCY = 32;
const MAX_BACKENDS = 90;
const P99_FACTOR = 3;
const GOAL = `0 errors, <=${MAX_BACKENDS} backends, p99<=${P99_FACTOR}x single-tenant`;

const SQL = 'SELECT name FROM customer WHERE cust_num = $1';

interface TenantInfo {
  readonly id: number;
  readonly name: string;
  readonly role: string;
  readonly password: string;
}

class WrongResult extends Error {
  override readonly name = 'WrongResult';
  readonly code = 'WRONG_RESULT';
}

function custNumOf(index: number): number {
  return 1 + (index % ROWS_PER_TENANT);
}

function check(rows: readonly { name: string }[], tenant: TenantInfo, custNum: number): void {
  const expected = `c${tenant.id}-${custNum}`;
  if (rows.length !== 1 || rows[0]?.name !== expected) {
    throw new WrongResult(`expected one row ${expected}, got ${JSON.stringify(rows)}`);
  }
}

type SideName = 'naive' | 'ours' | 'ours_role' | 'single';

interface SideRun extends LoadResult {
  readonly peakBackends: number;
  /** Backend sessions the run opened (pg_stat_database.sessions, read after they closed). */
  sessions?: number;
  readonly samples: number;
  /** A line of side-specific figures (pools, budget, timeouts). */
  readonly detail: string;
}

const LABELS: Record<SideName, string> = {
  naive: 'naive (pg.Pool max 5 per tenant role)',
  ours: "tenantry (identity 'app', the library default)",
  ours_role: "tenantry (identity 'tenant': one login role per tenant)",
  single: "tenantry single tenant (identity 'app')",
};

/** The seed-002 pattern: a pg.Pool per tenant credential, created on the tenant's first request. */
async function runNaive(
  db: BenchDatabase,
  tenants: readonly TenantInfo[],
  sequence: readonly number[],
  sampler: BackendSampler,
): Promise<SideRun> {
  const pools = new Map<number, pg.Pool>();
  const poolFor = (tenant: TenantInfo): pg.Pool => {
    let pool = pools.get(tenant.id);
    if (!pool) {
      pool = new pg.Pool({
        connectionString: urlAs(db.url, tenant.role, tenant.password),
        max: NAIVE_POOL_MAX,
      });
      pool.on('error', ignoreIdleError);
      pools.set(tenant.id, pool);
    }
    return pool;
  };
  sampler.reset();
  try {
    const result = await runSequence(
      sequence.length,
      CONCURRENCY,
      async (index) => {
        const tenant = tenants[sequence[index]!]!;
        const custNum = custNumOf(index);
        const { rows } = await poolFor(tenant).query<{ name: string }>(SQL, [custNum]);
        check(rows, tenant, custNum);
      },
      () => `${pools.size} tenant pools created`,
    );
    const open = [...pools.values()].reduce((n, p) => n + p.totalCount, 0);
    return {
      ...result,
      peakBackends: sampler.peak,
      samples: sampler.samples,
      detail: `${pools.size} pools created, ${open} connections open at the end`,
    };
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.end().catch(() => undefined)));
  }
}

/** Tenantry with default pool settings, a fresh instance per run. */
async function runTenantry(
  db: BenchDatabase,
  masterKey: string,
  tenants: readonly TenantInfo[],
  sequence: readonly number[],
  identity: Identity,
  sampler: BackendSampler,
): Promise<SideRun> {
  const tenantry: Tenantry = await createTenantry({ databaseUrl: db.url, masterKey });
  try {
    sampler.reset();
    const result = await runSequence(
      sequence.length,
      CONCURRENCY,
      async (index) => {
        const tenant = tenants[sequence[index]!]!;
        const custNum = custNumOf(index);
        const { rows } = await tenantry.withTenant(
          tenant.name,
          (tdb) => tdb.query<{ name: string }>(SQL, [custNum]),
          { identity },
        );
        check(rows, tenant, custNum);
      },
      () => `${tenantry.poolStats().pools} pools live`,
    );
    const peakBackends = sampler.peak;
    const samples = sampler.samples;
    const stats = tenantry.poolStats();
    const server = stats.servers.find((s) => s.server === 'main');
    const timeouts = stats.tenants.reduce((n, t) => n + t.timeouts, 0);
    const waitMax = stats.tenants.reduce((n, t) => Math.max(n, t.waitMsMax), 0);
    const { pool } = tenantry.config;
    return {
      ...result,
      peakBackends,
      samples,
      detail:
        `budget ${server?.budget ?? '?'} (perTenantMax ${pool.perTenantMax ?? `default ${Math.max(1, Math.floor((server?.budget ?? 4) / 4))}`}, ` +
        `maxPools ${pool.maxPools}); ${stats.pools} pools live at the end, ${server?.total ?? '?'} connections; ` +
        `${timeouts} checkout timeouts, longest checkout wait ${waitMax} ms`,
    };
  } finally {
    await tenantry.close();
  }
}

function describeErrors(run: LoadResult): string {
  if (run.errors === 0) return '0 errors';
  const codes = [...run.errorsByCode.entries()].map(([code, n]) => `${code}: ${fmtRate(n)}`).join(', ');
  return `${fmtRate(run.errors)} errors (${((100 * run.errors) / run.requests).toFixed(1)} %; ${codes})`;
}

function describeRun(run: SideRun): string {
  return (
    `${fmtRate(run.ok)} ok, ${describeErrors(run)}; peak ${run.peakBackends} client backends ` +
    `(${run.samples} samples); ${fmtRate(run.throughput)} req/s in ${(run.elapsedMs / 1000).toFixed(2)} s; ` +
    `p50 ${fmtMs(percentile(run.latenciesMs, 50))} ms, p99 ${fmtMs(percentile(run.latenciesMs, 99))} ms`
  );
}

interface Summary {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly errors53300: number;
  readonly peak: number;
  readonly sessions: number;
}

function summarize(runs: readonly SideRun[]): Summary {
  return {
    throughput: median(runs.map((r) => r.throughput)),
    p50: median(runs.map((r) => percentile(r.latenciesMs, 50))),
    p99: median(runs.map((r) => percentile(r.latenciesMs, 99))),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    errors53300: runs.reduce((n, r) => n + (r.errorsByCode.get('53300') ?? 0), 0),
    peak: Math.max(...runs.map((r) => r.peakBackends)),
    sessions: median(runs.map((r) => r.sessions ?? Number.NaN)),
  };
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const tenantCount = args.quick ? 1_000 : 10_000;
  const requestCount = args.quick ? 2_000 : 20_000;
  const rounds = args.quick ? 1 : 2;
  const started = performance.now();
  const db = await openDatabase(BENCH);
  const masterKey = generateMasterKey();
  let setup: Tenantry | undefined;
  let sampler: BackendSampler | undefined;
  let roles: CatalogRoles | undefined;
  let result: Parameters<typeof printJsonLine>[0];
  try {
    const settings = await withClient(db.url, async (client) => {
      const { rows } = await client.query<{ max: string; reserved: string }>(
        `SELECT current_setting('max_connections') AS max,
                current_setting('superuser_reserved_connections') AS reserved`,
      );
      return rows[0]!;
    });
    console.log(
      `${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}, max_connections=${settings.max} ` +
        `(superuser_reserved_connections=${settings.reserved})` +
        (args.quick
          ? ` — QUICK run: ${fmtRate(tenantCount)} tenants, ${fmtRate(requestCount)} requests`
          : ''),
    );

    // --- setup: tenants with login roles, rows, passwords (not timed as part of any side) ---
    setup = await createTenantry({ databaseUrl: db.url, masterKey });
    roles = setup.roles;
    await setup.operator.query(
      `CREATE TABLE public.customer (
         tenant_id int, cust_num int, name text, PRIMARY KEY (tenant_id, cust_num))`,
    );
    await setup.tables.multiTenant('public.customer');
    const names = Array.from({ length: tenantCount }, (_, i) => `tenant${String(i + 1).padStart(5, '0')}`);
    const createStart = performance.now();
    let created = 0;
    let lastReport = createStart;
    const tenantry0 = setup;
    await forEachLimited(names, CREATE_CONCURRENCY, async (name) => {
      await tenantry0.tenants.create({ name, isolation: 'shared', loginRole: true });
      created++;
      if (created % Math.max(1, tenantCount / 5) === 0) {
        const now = performance.now();
        console.log(
          `  created ${fmtRate(created)}/${fmtRate(tenantCount)} tenants (${((now - createStart) / 1000).toFixed(1)} s; ` +
            `last batch ${((now - lastReport) / (tenantCount / 5)).toFixed(2)} ms/tenant)`,
        );
        lastReport = now;
      }
    });
    const createSeconds = (performance.now() - createStart) / 1000;
    console.log(
      `created ${fmtRate(tenantCount)} shared tenants with login roles via tenants.create({ loginRole: true }) ` +
        `in ${createSeconds.toFixed(1)} s (${fmtRate(tenantCount / createSeconds)} tenants/s; ` +
        `${CREATE_CONCURRENCY} concurrent calls on one instance)`,
    );
    await setup.operator.query(
      `INSERT INTO public.customer (tenant_id, cust_num, name)
       SELECT t.id, n, 'c' || t.id || '-' || n
       FROM tenantry.tenant t CROSS JOIN generate_series(1, $1::int) AS n
       WHERE t.kind = 'regular'`,
      [ROWS_PER_TENANT],
    );
    await setup.operator.query('VACUUM ANALYZE public.customer');
    const listed = (await setup.tenants.list()).filter((t) => t.kind === 'regular');
    const tenants: TenantInfo[] = new Array<TenantInfo>(listed.length);
    const credentials = setup.credentials;
    const passwordStart = performance.now();
    await forEachLimited(listed, 4, async (tenant, i) => {
      if (!tenant.role) throw new Error(`tenant ${tenant.name} has no login role`);
      const password = await credentials.get(`tenant:${tenant.id}`, 'password');
      tenants[i] = { id: tenant.id, name: tenant.name, role: tenant.role, password };
    });
    console.log(
      `${fmtRate(tenants.length)} × ${ROWS_PER_TENANT} customer rows; role passwords read with ` +
        `credentials.get() in ${((performance.now() - passwordStart) / 1000).toFixed(1)} s (outside the timed runs)`,
    );
    await setup.close();
    setup = undefined;

    const sequence = zipfSequence(tenants.length, ZIPF_S, requestCount, SEED);
    const distinct = new Set(sequence).size;
    const top = sequence.filter((rank) => rank === 0).length;
    const singleSequence = new Array<number>(requestCount).fill(0);
    console.log(
      `sequence: ${fmtRate(requestCount)} requests, Zipf(${ZIPF_S}) over ${fmtRate(tenants.length)} tenants ` +
        `(seed ${SEED}): ${fmtRate(distinct)} distinct tenants, the top tenant ${((100 * top) / requestCount).toFixed(1)} %; ` +
        `concurrency ${CONCURRENCY}; ${rounds} round(s), side order rotated each round`,
    );

    sampler = await BackendSampler.start(db.url);
    const idle = await sampler.settle(0);
    console.log(`client backends before the runs (without the sampler): ${idle}`);
    const active = sampler;
    const sides: Record<SideName, () => Promise<SideRun>> = {
      naive: () => runNaive(db, tenants, sequence, active),
      ours: () => runTenantry(db, masterKey, tenants, sequence, 'app', active),
      ours_role: () => runTenantry(db, masterKey, tenants, sequence, 'tenant', active),
      single: () => runTenantry(db, masterKey, tenants, singleSequence, 'app', active),
    };
    const order: SideName[] = ['naive', 'ours', 'ours_role', 'single'];
    const runs: Record<SideName, SideRun[]> = { naive: [], ours: [], ours_role: [], single: [] };
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < order.length; i++) {
        const side = order[(r + i) % order.length]!;
        const sessionsBefore = await active.sessions();
        const run = await sides[side]();
        runs[side].push(run);
        const left = await active.settle(idle);
        await new Promise((resolve) => setTimeout(resolve, 600)); // closing backends flush their statistics
        run.sessions = (await active.sessions()) - sessionsBefore;
        console.log(`round ${r + 1} ${LABELS[side]}: ${describeRun(run)}`);
        console.log(
          `    backend sessions opened: ${fmtRate(run.sessions)} (${(run.sessions / run.requests).toFixed(3)} per request); ` +
            `${run.detail}${left > idle ? `; ${left} backends still open 15 s later` : ''}`,
        );
        if (run.firstError) {
          console.log(
            `    first failure at request #${run.firstError.index + 1} (${run.firstError.note}); ` +
              [...run.sampleMessages.entries()].map(([code, m]) => `${code}: "${m}"`).join('; '),
          );
        }
      }
    }

    const naive = summarize(runs.naive);
    const ours = summarize(runs.ours);
    const app = summarize(runs.ours_role);
    const single = summarize(runs.single);
    const ratio = ours.throughput / naive.throughput;
    const p99Limit = P99_FACTOR * single.p99;
    const okErrors = ours.errors === 0;
    const okBackends = ours.peak <= MAX_BACKENDS;
    const okP99 = ours.p99 <= p99Limit;
    const pass = okErrors && okBackends && okP99;
    const line = (label: string, s: Summary) =>
      `${label}: ${fmtRate(s.throughput)} req/s (successful), ${fmtRate(s.errors)} errors ` +
      `(${fmtRate(s.errors53300)} × 53300), peak ${s.peak} backends, ${fmtRate(s.sessions)} sessions opened, ` +
      `p50 ${fmtMs(s.p50)} ms, p99 ${fmtMs(s.p99)} ms`;
    const of = rounds > 1 ? ` (medians of ${rounds} rounds; errors summed, peak the highest)` : '';
    console.log(`summary${of}:`);
    console.log(`  baseline ${line(LABELS.naive, naive)}`);
    console.log(`  ours     ${line(LABELS.ours, ours)}`);
    console.log(`  extra    ${line(LABELS.ours_role, app)}`);
    console.log(`  p99 base ${line(LABELS.single, single)}`);
    console.log(`ratio ours/baseline throughput: ${ratio.toFixed(3)}`);
    console.log(
      `goal (${GOAL}): errors ${ours.errors} ${okErrors ? 'ok' : 'FAIL'}; peak backends ${ours.peak} ` +
        `${okBackends ? 'ok' : 'FAIL'}; p99 ${fmtMs(ours.p99)} ms vs limit ${fmtMs(p99Limit)} ms ` +
        `(3 × ${fmtMs(single.p99)}) ${okP99 ? 'ok' : 'FAIL'} → ${pass ? 'PASS' : 'FAIL'}`,
    );
    console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
    result = {
      bench: BENCH,
      unit: 'requests/s',
      baseline: Math.round(naive.throughput),
      ours: Math.round(ours.throughput),
      ratio: round(ratio),
      goal: GOAL,
      pass,
      errors_naive: naive.errors,
      errors_naive_53300: naive.errors53300,
      errors_ours: ours.errors,
      errors_ours_role: app.errors,
      errors_single: single.errors,
      peak_backends_naive: naive.peak,
      peak_backends_ours: ours.peak,
      peak_backends_ours_role: app.peak,
      peak_backends_single: single.peak,
      sessions_naive: naive.sessions,
      sessions_ours: ours.sessions,
      sessions_ours_role: app.sessions,
      sessions_single: single.sessions,
      p50_ms_naive: round(naive.p50),
      p99_ms_naive: round(naive.p99),
      p50_ms_ours: round(ours.p50),
      p99_ms_ours: round(ours.p99),
      p50_ms_ours_role: round(app.p50),
      p99_ms_ours_role: round(app.p99),
      throughput_ours_role: Math.round(app.throughput),
      p50_ms_single: round(single.p50),
      p99_single_ms: round(single.p99),
      throughput_single: Math.round(single.throughput),
      naive_first_failure_request: runs.naive[0]?.firstError ? runs.naive[0].firstError.index + 1 : null,
      tenants: tenants.length,
      requests: requestCount,
      distinct_tenants: distinct,
      concurrency: CONCURRENCY,
      zipf_s: ZIPF_S,
      rounds,
      create_tenants_s: round(createSeconds, 1),
      quick: args.quick,
    };
  } finally {
    await sampler?.stop();
    await setup?.close();
    await dropTenantryRolesOnClose(db, roles).catch((error: unknown) =>
      console.error(`could not list tenantry's roles: ${String(error)}`),
    );
    await db.close();
  }
  printJsonLine(result);
}
