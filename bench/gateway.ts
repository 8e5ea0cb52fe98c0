/**
 * gateway: `pgbench -S -c 8 -j 2 -T 20` (quick: `-T 5`) against
 *
 * - (a) direct: the embedded PostgreSQL itself, as a plain login role on its own database;
 * - (b) baseline: PgBouncer (Debian's package, installed when missing) in transaction mode,
 *   default_pool_size 20, on a free port, in front of the same database and role;
 * - (c) ours: tenantry's gateway (in a child process of its own) with the seed-004 demo, as
 *   `alice@HomeDepot` (a writer), on pgbench tables that HomeDepot's tenant admin
 *   `admin@HomeDepot` created through the gateway by `pgbench -i` (writers may not change the
 *   schema), so they live in HomeDepot's own schema (tenantry's default pool: 20 connections per
 *   tenant).
 *
 * Same server, same scale (`-s 10`), same client; each side is warmed up first; full runs do two
 * rounds in the orders a b c and c b a. tps is pgbench's own (the mean over rounds); latency
 * percentiles are exact, from pgbench's per-transaction logs (`-l`) of all rounds. The CPU time
 * of PgBouncer and of the gateway process per transaction is shown too. Goal: ours ≥ 1.0 ×
 * PgBouncer's tps and p99 ≤ 1.2 × PgBouncer's. `--profile` adds one more run of (c) under V8's
 * CPU profiler and prints the hottest functions.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { seedDemo } from '../src/demo/index.js';
import { createTenantry, generateMasterKey } from '../src/index.js';
import { fmtRate, loadAverage, openDatabase, parseArgs, round, urlFor, withClient } from './harness.js';
import { fmtMs } from './load.js';
import {
  pgbenchBinary,
  pgbenchInit,
  percentileOf,
  pgbenchSelect,
  type PgbenchTarget,
} from './gateway-pgbench.js';
import { startPgbouncer, type Pgbouncer } from './gateway-pgbouncer.js';
import { GatewayProcess } from './gateway-process.js';
import { formatProfile, summarizeProfile } from './gateway-profile.js';
import { processSched } from './gateway-tools.js';

const BENCH = 'gateway';
const CLIENTS = 8;
const THREADS = 2;
const SCALE = 10;
const POOL_SIZE = 20;
const GOAL = 1.0;
const P99_LIMIT = 1.2;
/** The demo's tenant admin of HomeDepot runs `pgbench -i` (writers like alice may not change the schema). */
const INIT_USER = 'admin@HomeDepot';

type SideName = 'direct' | 'pgbouncer' | 'gateway';

interface Side {
  readonly name: SideName;
  readonly label: string;
  readonly target: PgbenchTarget;
  /** The process in the middle (PgBouncer, the gateway), if any. */
  readonly pid?: number | undefined;
  readonly tps: number[];
  readonly latencies: Float64Array[];
  transactions: number;
  /** What the process in the middle used over the measured runs (differences of samples). */
  cpuMs: number;
  waitMs: number;
  preempted: number;
}

function describe(side: Side): string {
  const tps = side.tps.reduce((a, b) => a + b, 0) / side.tps.length;
  const per = (value: number): string => ((1000 * value) / side.transactions).toFixed(1);
  const cpu = side.pid
    ? `; its process: CPU ${per(side.cpuMs)} µs, run-queue wait ${per(side.waitMs)} µs, ` +
      `${(side.preempted / side.transactions).toFixed(2)} preemptions per transaction`
    : '';
  return (
    `${fmtRate(tps)} tps, p50 ${fmtMs(percentileOf(side.latencies, 50))} ms, ` +
    `p99 ${fmtMs(percentileOf(side.latencies, 99))} ms (${fmtRate(side.transactions)} transactions${cpu})`
  );
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['--profile']);
  const seconds = args.quick ? 5 : 20;
  const warmupSeconds = args.quick ? 1 : 3;
  const rounds = args.quick ? 1 : 2;
  const started = performance.now();
  const loadStart = loadAverage();
  const pgbench = await pgbenchBinary();
  const db = await openDatabase(BENCH);
  const server = new URL(db.url);
  const host = server.hostname;
  const port = Number(server.port || 5432);
  const plainUser = `bench_plain_${randomBytes(3).toString('hex')}`;
  const plainDb = `${plainUser}_db`;
  const plainPassword = randomBytes(12).toString('hex');
  const masterKey = generateMasterKey();
  let gateway: GatewayProcess | undefined;
  let bouncer: Pgbouncer | undefined;
  let plainCreated = false;
  let json: Record<string, unknown> | undefined;
  try {
    const setup = await createTenantry({ databaseUrl: db.url, masterKey });
    try {
      await seedDemo(setup);
    } finally {
      await setup.close();
    }
    await withClient(db.url, async (client) => {
      await client.query(`CREATE ROLE ${plainUser} LOGIN PASSWORD ${pg.escapeLiteral(plainPassword)}`);
      await client.query(`CREATE DATABASE ${plainDb} OWNER ${plainUser}`);
    });
    plainCreated = true;
    db.dropRolesOnClose(plainUser);
    gateway = await GatewayProcess.start({ databaseUrl: db.url, masterKey });
    bouncer = await startPgbouncer({
      serverHost: host,
      serverPort: port,
      database: plainDb,
      user: plainUser,
      password: plainPassword,
      poolSize: POOL_SIZE,
    });
    const plain = { host, user: plainUser, password: plainPassword, database: plainDb };
    const gw = gateway;
    const bn = bouncer;
    const specs: Pick<Side, 'name' | 'label' | 'target' | 'pid'>[] = [
      { name: 'direct', label: '(a) direct PostgreSQL', target: { ...plain, port } },
      {
        name: 'pgbouncer',
        label: `(b) ${bn.version}, transaction mode, pool ${POOL_SIZE}`,
        target: { ...plain, host: '127.0.0.1', port: bn.port },
        pid: bn.pid,
      },
      {
        name: 'gateway',
        label: '(c) tenantry gateway as alice@HomeDepot (default pool)',
        target: {
          host: '127.0.0.1',
          port: gw.port,
          user: 'alice@HomeDepot',
          password: 'demo',
          database: 'tenantry',
        },
        pid: gw.pid,
      },
    ];
    const sides: Side[] = specs.map((side) => ({
      ...side,
      tps: [],
      latencies: [],
      transactions: 0,
      cpuMs: 0,
      waitMs: 0,
      preempted: 0,
    }));
    const [direct, baseline, ours] = sides as [Side, Side, Side];
    console.log(
      `${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}; ${bn.version}; pgbench -S -c ${CLIENTS} -j ${THREADS} ` +
        `-T ${seconds}, scale ${SCALE}, ${rounds} round(s)${args.quick ? ' — QUICK run' : ''}; load average ${loadStart}`,
    );

    const initStart = performance.now();
    await Promise.all([
      pgbenchInit(pgbench, direct.target, SCALE),
      pgbenchInit(pgbench, { ...ours.target, user: INIT_USER }, SCALE),
    ]);
    const placed = await withClient(db.url, async (client) => {
      const { rows } = await client.query<{ schema: string; rls: boolean }>(
        `SELECT n.nspname AS schema, c.relrowsecurity AS rls FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'pgbench_accounts'`,
      );
      return rows.map((r) => `${r.schema}${r.rls ? ' (row-level security on)' : ''}`).join(', ');
    });
    const accounts = await withClient(urlFor(db.url, plainDb), async (client) => {
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM pgbench_accounts');
      return Number(rows[0]?.n);
    });
    console.log(
      `pgbench -i -s ${SCALE} (${fmtRate(accounts)} accounts) into database ${plainDb} as ${plainUser} and through ` +
        `the gateway as ${INIT_USER} (admin; tables in schema ${placed}) in ${((performance.now() - initStart) / 1000).toFixed(1)} s`,
    );

    for (const side of sides) {
      await pgbenchSelect(pgbench, side.target, {
        clients: CLIENTS,
        threads: THREADS,
        seconds: warmupSeconds,
        log: false,
      });
    }
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const before = processSched(side.pid);
        const run = await pgbenchSelect(pgbench, side.target, {
          clients: CLIENTS,
          threads: THREADS,
          seconds,
          log: true,
        });
        const after = processSched(side.pid);
        side.cpuMs += after.cpuMs - before.cpuMs;
        side.waitMs += after.waitMs - before.waitMs;
        side.preempted += after.preempted - before.preempted;
        side.tps.push(run.tps);
        side.latencies.push(run.latenciesMs);
        side.transactions += run.transactions;
        console.log(
          `round ${r + 1} ${side.label}: ${fmtRate(run.tps)} tps, p99 ${fmtMs(percentileOf([run.latenciesMs], 99))} ms`,
        );
      }
    }
    const after = await gw.stats();
    console.log(
      `gateway after the runs: ${after.gateway.clients} clients, ${after.gateway.active} holding a backend`,
    );

    const mean = (side: Side): number => side.tps.reduce((a, b) => a + b, 0) / side.tps.length;
    const p99 = (side: Side): number => percentileOf(side.latencies, 99);
    const ratio = mean(ours) / mean(baseline);
    const p99Ratio = p99(ours) / p99(baseline);
    const pass = ratio >= GOAL && p99Ratio <= P99_LIMIT;
    console.log(
      `summary (${rounds > 1 ? `mean tps of ${rounds} rounds, ` : ''}latency over all transactions):`,
    );
    console.log(`  direct   ${direct.label}: ${describe(direct)}`);
    console.log(`  baseline ${baseline.label}: ${describe(baseline)}`);
    console.log(`  ours     ${ours.label}: ${describe(ours)}`);
    console.log(
      `ratio ours/baseline: tps ${ratio.toFixed(3)} (goal ≥ ${GOAL.toFixed(1)}) ${ratio >= GOAL ? 'ok' : 'FAIL'}; ` +
        `p99 ${p99Ratio.toFixed(3)} (goal ≤ ${P99_LIMIT}) ${p99Ratio <= P99_LIMIT ? 'ok' : 'FAIL'} → ${pass ? 'PASS' : 'FAIL'}; ` +
        `ours/direct tps ${(mean(ours) / mean(direct)).toFixed(3)}, PgBouncer/direct ${(mean(baseline) / mean(direct)).toFixed(3)}`,
    );

    if (args.flags.has('--profile')) {
      const dir = mkdtempSync(join(tmpdir(), 'tenantry-bench-profile-'));
      const file = join(dir, 'gateway.cpuprofile');
      await gw.profileStart();
      const run = await pgbenchSelect(pgbench, ours.target, {
        clients: CLIENTS,
        threads: THREADS,
        seconds,
        log: false,
      });
      await gw.profileStop(file);
      console.log(
        `profile run of (c) (not in the figures above): ${fmtRate(run.tps)} tps under the profiler`,
      );
      for (const line of formatProfile(summarizeProfile(file))) console.log(line);
      console.log(`  profile kept in ${file} (open it in Chrome DevTools or speedscope)`);
    }
    const loadEnd = loadAverage();
    console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s; load average ${loadEnd}`);
    if (Math.max(loadStart, loadEnd) > cpus().length * 0.75) {
      console.log(
        `WARNING: load average ${Math.max(loadStart, loadEnd)} on ${cpus().length} CPUs: other processes competed ` +
          'for the CPU and distort the comparison (not evenly across the sides); rerun on a quiet machine.',
      );
    }
    json = {
      bench: BENCH,
      unit: 'tps',
      baseline: Math.round(mean(baseline)),
      ours: Math.round(mean(ours)),
      ratio: round(ratio),
      goal: GOAL,
      pass,
      direct_tps: Math.round(mean(direct)),
      p99_ms: round(p99(ours)),
      baseline_p99_ms: round(p99(baseline)),
      p99_ratio: round(p99Ratio),
      direct_p99_ms: round(p99(direct)),
      cpu_us_per_tx: round((1000 * ours.cpuMs) / ours.transactions, 1),
      baseline_cpu_us_per_tx: round((1000 * baseline.cpuMs) / baseline.transactions, 1),
      seconds,
      rounds,
      load_average: Math.max(loadStart, loadEnd),
      quick: args.quick,
    };
  } finally {
    await bouncer?.stop();
    await gateway?.stop();
    if (plainCreated) {
      await withClient(db.url, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${plainDb} WITH (FORCE)`),
      ).catch((error: unknown) => console.error(`could not drop ${plainDb}: ${String(error)}`));
    }
    await db.close();
  }
  console.log(JSON.stringify(json));
}
