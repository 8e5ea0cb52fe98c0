/**
 * soak: 10 minutes (quick: 30 s) of mixed traffic from 1,000 tenants (quick: 100) through the
 * three faces at once, with a leak oracle: every row names the tenant that wrote it, and every
 * row any face reads back is checked against the tenant that asked.
 *
 * - Setup (soak-setup.ts): 945 shared tenants (with login roles), 50 schema and 5 database
 *   tenants (quick: 90 / 8 / 2); tables `customer`, `note`, seed 002's `users`; a builtin
 *   domain, a `write` user with a password and a delegation token per tenant.
 * - Processes: the server (gateway + HTTP API, soak-server.ts, pool budget 40) and the library
 *   worker (withTenant, soak-library.ts, budget 24) are children, so their memory is their own;
 *   this process drives the gateway and HTTP faces. 8 concurrent loops per face. PostgreSQL:
 *   the embedded server of the benchmarks (max_connections 100), with autovacuum switched on,
 *   as in production (the other benchmarks turn it off). Pools close idle connections after
 *   30 s (the default; quick: 2 s, so that the connection check at the end need not wait).
 * - Traffic: reads, inserts, updates and small transactions over random tenants (half uniform,
 *   half Zipf(1.0)); writes trim what they add, so tables keep their size. First 32 password
 *   logins (8 at a time: every libuv thread of the server runs scrypt), then a warm-up (20 s;
 *   quick: 3 s) of the traffic; the measured period follows.
 * - Samples every 30 s (quick: 10 s): throughput per face, RSS and heap of the three processes,
 *   PostgreSQL client backends. Memory at start = end of the warm-up, after a full GC.
 *
 * baseline = ops/s of the first minute of the measured period (quick: first 10 s), ours = of the
 * last minute, ratio = ours / baseline. Pass: ratio ≥ 0.8, 0 leaks, error rate < 0.1 %; for
 * the server and the library process, heap after GC grown ≤ 32 MB and RSS grown ≤ max(32 MB,
 * 10 %) over the second half of the measured period (full runs only: malloc arenas of the libuv
 * threads fill once — an scrypt login keeps ~16 MB per thread — which a quick run cannot tell
 * from a leak); and, once idle pools closed, no more backends serving tenant work than before.
 */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { generateMasterKey } from '../src/index.js';
import { loadAverage, openDatabase, parseArgs, round, withClient } from './harness.js';
import { BackendSampler, printJsonLine } from './load.js';
import { SoakChild } from './soak-child.js';
import {
  backendBreakdown,
  memoryPoint,
  Monitor,
  poolBackends,
  settlePools,
  type MemoryPoint,
} from './soak-monitor.js';
import type { LibraryRun } from './soak-library.js';
import {
  CRITERIA,
  describeFace,
  describeKinds,
  describeMemory,
  memoryVerdict,
  rate,
  samples,
  type ProcessMemory,
} from './soak-report.js';
import { setUpSoak, type TenantMix } from './soak-setup.js';
import type { FaceSummary, TrafficPlan } from './soak-common.js';
import { gatewayTraffic } from './soak-gateway.js';
import { httpTraffic, primeLogins } from './soak-http.js';

const BENCH = 'soak';
const CONCURRENCY = 8;
const SERVER_BUDGET = 40;
const LIBRARY_BUDGET = 24;
const ADMIN = 'soak-admin-token-0123456789abcdef';

interface Shape {
  readonly mix: TenantMix;
  readonly warmupS: number;
  readonly measureS: number;
  readonly sampleS: number;
  /** Length of the first and last windows compared. */
  readonly windowS: number;
  readonly idleMs: number;
}

const FULL: Shape = {
  mix: { shared: 945, schema: 50, database: 5 },
  warmupS: 20,
  measureS: 600,
  sampleS: 30,
  windowS: 60,
  idleMs: 30_000,
};
const QUICK: Shape = {
  mix: { shared: 90, schema: 8, database: 2 },
  warmupS: 3,
  measureS: 30,
  sampleS: 10,
  windowS: 10,
  idleMs: 2_000,
};

/** Rounds of 8 concurrent password logins before the traffic (see primeLogins). */
const PRIME_ROUNDS = 4;

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const shape = args.quick ? QUICK : FULL;
  const started = performance.now();
  const loadStart = loadAverage();
  // The embedded server of the benchmarks runs without autovacuum; a soak needs it (on the
  // command line: ALTER SYSTEM cannot override a command-line setting).
  const db = await openDatabase(BENCH, { settings: { autovacuum: 'on' } });
  const children: SoakChild[] = [];
  let sampler: BackendSampler | undefined;
  let json: Parameters<typeof printJsonLine>[0];
  try {
    const tenantCount = shape.mix.shared + shape.mix.schema + shape.mix.database;
    console.log(
      `${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}; ${tenantCount} tenants; warm-up ${shape.warmupS} s, ` +
        `measured ${shape.measureS} s; ${CONCURRENCY} loops per face${args.quick ? ' — QUICK run' : ''}; load average ${loadStart}`,
    );
    const autovacuum = await withClient(db.url, async (client) => {
      const { rows } = await client.query<{ on: string }>("SELECT current_setting('autovacuum') AS on");
      return rows[0]?.on ?? 'unknown';
    });
    console.log(
      `autovacuum: ${autovacuum}${autovacuum === 'on' ? '' : ' — WARNING: deleted rows pile up; throughput falls over the run'}`,
    );
    const masterKey = generateMasterKey();
    const tenants = await setUpSoak(db.url, masterKey, shape.mix);
    const env = {
      TENANTRY_SOAK_URL: db.url,
      TENANTRY_MASTER_KEY: masterKey,
      TENANTRY_ADMIN_TOKEN: ADMIN,
      TENANTRY_SOAK_IDLE_MS: String(shape.idleMs),
    };
    const server = await SoakChild.start('soak-server', 'server', {
      ...env,
      TENANTRY_SOAK_BUDGET: String(SERVER_BUDGET),
    });
    children.push(server);
    const library = await SoakChild.start('soak-library', 'library', {
      ...env,
      TENANTRY_SOAK_BUDGET: String(LIBRARY_BUDGET),
    });
    children.push(library);
    const gatewayPort = Number(server.info.gatewayPort);
    const httpPort = Number(server.info.httpPort);
    sampler = await BackendSampler.start(db.url, 1000);
    const backendsStart = await sampler.sample();
    const poolsStart = await poolBackends(db.url);
    const breakdownStart = await backendBreakdown(db.url);
    const sessionsStart = await sampler.sessions();
    const idle = await memoryPoint(0, server, library, true);
    console.log(
      `processes: server pid ${server.pid} (gateway :${gatewayPort}, HTTP :${httpPort}, budget ${SERVER_BUDGET}), ` +
        `library pid ${library.pid} (budget ${LIBRARY_BUDGET}), driver pid ${process.pid}; PostgreSQL client ` +
        `backends before traffic: ${backendsStart} (${breakdownStart})`,
    );

    // --- traffic ---
    // Every libuv thread of the server runs scrypt once first (see primeLogins).
    await primeLogins(httpPort, tenants, 8, PRIME_ROUNDS);
    const startMs = Date.now() + 100;
    const plan: TrafficPlan = {
      startMs,
      warmupMs: shape.warmupS * 1000,
      durationMs: (shape.warmupS + shape.measureS) * 1000,
      concurrency: CONCURRENCY,
    };
    await library.ask('run', { ...plan, tenants: tenants.map((t) => t.name) } satisfies LibraryRun);
    const monitor = new Monitor(server, library, sampler);
    monitor.start(startMs, shape.warmupS, shape.measureS, shape.sampleS);
    const [gatewayStats, httpStats] = await Promise.all([
      gatewayTraffic(gatewayPort, tenants, plan),
      httpTraffic(httpPort, tenants, plan),
    ]);
    const librarySummary = await library.ask<FaceSummary>('finish');
    await monitor.stop();
    const end = await memoryPoint(shape.measureS, server, library, true);
    const start = monitor.series[0] ?? idle;
    const mid = monitor.middle(shape.measureS) ?? start;
    const backendsPeak = sampler.peak;
    const faces = [librarySummary, gatewayStats.summary(), httpStats.summary()];

    // --- after: connections go back once the pools' idle timeout passed ---
    const settleStart = performance.now();
    const poolsEnd = await settlePools(db.url, poolsStart, shape.idleMs + 20_000);
    const settleS = (performance.now() - settleStart) / 1000;
    const backendsEnd = await sampler.sample();
    const sessionsOpened = (await sampler.sessions()) - sessionsStart;
    const breakdownEnd = await backendBreakdown(db.url);
    const serverStats = await server.ask<{ gatewayClients: number; pools: number }>('stats');

    // --- figures ---
    const from = shape.warmupS;
    const to = shape.warmupS + shape.measureS;
    const baseline = rate(faces, from, from + shape.windowS);
    const ours = rate(faces, to - shape.windowS, to);
    const ratio = ours / baseline;
    const ops = faces.reduce((sum, f) => sum + f.ops, 0);
    const errors = faces.reduce((sum, f) => sum + f.errors, 0);
    const leaks = faces.reduce((sum, f) => sum + f.leaks, 0);
    const errorRate = errors / (ops + errors);
    const memory: ProcessMemory[] = (['server', 'library', 'driver'] as const).map((key) => ({
      label: { server: 'server', library: 'library process', driver: 'driver (this)' }[key],
      idle: idle[key],
      start: start[key],
      mid: mid[key],
      end: end[key],
      gc: key !== 'driver',
    }));
    const memoryFailures = memory
      .slice(0, 2)
      .map((m) => memoryVerdict(m, !args.quick))
      .filter((v) => v !== undefined);
    const connectionLeak = poolsEnd > poolsStart;
    const failures = [
      ...(ratio >= CRITERIA.ratio ? [] : [`throughput ratio ${ratio.toFixed(3)} < ${CRITERIA.ratio}`]),
      ...(leaks === 0 ? [] : [`${leaks} leaked rows`]),
      ...(errorRate < CRITERIA.errorRate ? [] : [`error rate ${(errorRate * 100).toFixed(3)} % ≥ 0.1 %`]),
      ...memoryFailures,
      ...(connectionLeak ? [`${poolsEnd} pooled backends after the run > ${poolsStart} before`] : []),
    ];
    const pass = failures.length === 0;

    console.log(`measured ${shape.measureS} s after a ${shape.warmupS} s warm-up, ${tenantCount} tenants:`);
    for (const face of faces) console.log(`  ${describeFace(face, from, to)}`);
    console.log('  per kind of operation (measured successes × p50/p99):');
    for (const face of faces) console.log(`    ${face.face.padEnd(8)} ${describeKinds(face)}`);
    for (const line of samples(faces)) console.log(line);
    console.log(
      `  all      ${round(rate(faces, from, to), 0)} ops/s, ${ops} ops, ${errors} errors (${(errorRate * 100).toFixed(4)} %), ${leaks} leaks`,
    );
    for (const m of memory) console.log(`  ${describeMemory(m)}`);
    const cpu = (key: keyof MemoryPoint['cpuS']) =>
      `${key} ${(end.cpuS[key] - start.cpuS[key]).toFixed(0)} s (${((100 * (end.cpuS[key] - start.cpuS[key])) / shape.measureS).toFixed(0)} % of a core)`;
    console.log(
      `  CPU over the measured period: ${cpu('server')}, ${cpu('library')}, ${cpu('driver')}; ${cpus().length} cores`,
    );
    console.log(
      `  PostgreSQL backends of the pools: ${poolsStart} before, ${poolsEnd} after (settled in ${settleS.toFixed(1)} s); ` +
        `all client backends: ${backendsStart} before, peak ${backendsPeak} during, ${backendsEnd} after (${breakdownEnd}); ${sessionsOpened} sessions opened during the run ` +
        `(${(ops / sessionsOpened).toFixed(1)} operations per session); server afterwards: ${serverStats.gatewayClients} gateway ` +
        `clients, ${serverStats.pools} pools`,
    );
    console.log(`baseline (first ${shape.windowS} s measured): ${round(baseline, 0)} ops/s`);
    console.log(`ours     (last ${shape.windowS} s measured):  ${round(ours, 0)} ops/s`);
    const loadEnd = loadAverage();
    console.log(
      `ratio last/first: ${ratio.toFixed(3)} (goal ≥ ${CRITERIA.ratio}) → ${pass ? 'PASS' : `FAIL: ${failures.join('; ')}`}; ` +
        `total time ${((performance.now() - started) / 1000).toFixed(1)} s; load average ${loadStart} at start, ${loadEnd} at end`,
    );
    const perFace = Object.fromEntries(
      faces.flatMap((f) => [
        [`${f.face}_ops_s`, round(rate([f], from, to), 0)],
        [`${f.face}_p50_ms`, round(f.p50Ms, 2)],
        [`${f.face}_p99_ms`, round(f.p99Ms, 2)],
        [`${f.face}_errors`, f.errors],
      ]),
    );
    json = {
      bench: BENCH,
      unit: 'ops/s',
      baseline: round(baseline, 0),
      ours: round(ours, 0),
      ratio: round(ratio),
      goal: CRITERIA.ratio,
      pass,
      errors,
      error_rate: round(errorRate, 6),
      leaks,
      ops,
      rss_start_mb: memory[0]!.start.rssMb,
      rss_mid_mb: memory[0]!.mid.rssMb,
      rss_end_mb: memory[0]!.end.rssMb,
      heap_start_mb: memory[0]!.start.heapUsedMb,
      heap_end_mb: memory[0]!.end.heapUsedMb,
      library_rss_start_mb: memory[1]!.start.rssMb,
      library_rss_mid_mb: memory[1]!.mid.rssMb,
      library_rss_end_mb: memory[1]!.end.rssMb,
      library_heap_start_mb: memory[1]!.start.heapUsedMb,
      library_heap_end_mb: memory[1]!.end.heapUsedMb,
      driver_rss_start_mb: memory[2]!.start.rssMb,
      driver_rss_end_mb: memory[2]!.end.rssMb,
      backends_start: backendsStart,
      backends_peak: backendsPeak,
      backends_end: backendsEnd,
      pool_backends_start: poolsStart,
      pool_backends_end: poolsEnd,
      sessions_opened: sessionsOpened,
      server_cpu_s: round(end.cpuS.server - start.cpuS.server, 1),
      library_cpu_s: round(end.cpuS.library - start.cpuS.library, 1),
      driver_cpu_s: round(end.cpuS.driver - start.cpuS.driver, 1),
      ...perFace,
      tenants: tenantCount,
      seconds: shape.measureS,
      failures,
      load_start: loadStart,
      load_end: loadEnd,
      autovacuum,
      quick: args.quick,
    };
  } finally {
    await sampler?.stop();
    for (const child of children.reverse())
      await child.stop().catch((error: unknown) => console.error(String(error)));
    await db.close();
  }
  printJsonLine(json);
}
