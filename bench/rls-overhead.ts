/**
 * rls-overhead: what tenantry's row-level security policy costs PostgreSQL per query, with
 * round trips taken out of the picture.
 *
 * Two identical tables of 1,000,000 rows (1,000 tenants × 1,000 rows; see rls-common.ts):
 * - baseline: `public.event_plain`, no RLS, queried with a hand-written `WHERE tenant_id = $1`
 *   by a plain non-superuser role that may SELECT it;
 * - ours: `public.event`, declared with `tenantry.tables.multiTenant()`, queried WITHOUT a
 *   tenant predicate by tenantry's app role; its policy filters the rows.
 * Both sides run the same transactions: BEGIN plus `set_config('tenantry.tenant', id, true)` in
 * one simple query, 50 queries of one shape, COMMIT; only the shape's queries count. Shapes:
 * point lookup, 100-row id range, 100-row kind filter (the (tenant_id, kind) index), per-tenant
 * count(*) — each with named prepared statements and with the simple protocol.
 *
 * `--explain` also prints EXPLAIN ANALYZE of every shape on both sides.
 */
import { randomBytes } from 'node:crypto';
import { createTenantry, type Tenantry } from '../src/index.js';
import type pg from 'pg';
import {
  fmtRate,
  loadAverage,
  openDatabase,
  pairedRatio,
  parseArgs,
  printResult,
  roleNames,
  round,
  urlAs,
} from './harness.js';
import {
  CONNECTIONS,
  QUERIES_PER_TX,
  ROWS_PER_TENANT,
  TENANTS,
  appPassword,
  connect,
  describePolicies,
  explainShapes,
  loadEventTables,
  measureCase,
  protocols,
  shapes,
  type Protocol,
} from './rls-common.js';

const BENCH = 'rls-overhead';
const GOALS: Record<Protocol, number> = { prepared: 0.97, simple: 0.93 };

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['--explain']);
  const timing = args.quick
    ? { rounds: 3, roundMs: 300, warmupMs: 150 }
    : { rounds: 7, roundMs: 1_500, warmupMs: 500 };

  const started = Date.now();
  const loadStart = loadAverage();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  const clients: pg.Client[] = [];
  let summary: Parameters<typeof printResult>[0];
  try {
    console.log(`${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}; load average ${loadStart}`);
    tenantry = await createTenantry({ databaseUrl: db.url });
    const readerRole = `bench_reader_${randomBytes(4).toString('hex')}`;
    const readerPassword = randomBytes(16).toString('hex');
    db.dropRolesOnClose(readerRole, ...roleNames(tenantry.roles));
    const tenants = await loadEventTables(tenantry, readerRole, readerPassword);
    console.log(
      `loaded ${TENANTS} tenants × ${ROWS_PER_TENANT} rows into public.event (RLS) and public.event_plain ` +
        `in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    for (const line of await describePolicies(tenantry)) console.log(`  policy on public.event: ${line}`);

    const appUrl = urlAs(db.url, tenantry.roles.app, await appPassword(tenantry));
    const baselineClients: pg.Client[] = [];
    const oursClients: pg.Client[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      baselineClients.push(await connect(urlAs(db.url, readerRole, readerPassword), 'bench-baseline'));
      oursClients.push(await connect(appUrl, 'bench-ours'));
    }
    clients.push(...baselineClients, ...oursClients);
    if (args.flags.has('--explain')) {
      await explainShapes(
        { baseline: baselineClients[0]!, rls: oursClients[0]! },
        tenants[tenants.length >> 1]!,
      );
    }
    console.log(
      `${CONNECTIONS} connections per side; transactions of ${QUERIES_PER_TX} queries for one random tenant; ` +
        `${timing.rounds} rounds × ${timing.roundMs / 1000} s per side and case, order alternated (ABAB…)`,
    );

    const extra: Record<string, number> = {};
    const minima: Record<Protocol, number> = { prepared: Infinity, simple: Infinity };
    for (const protocol of protocols) {
      for (const shape of shapes) {
        const results = await measureCase(
          [
            { name: 'baseline', who: 'baseline', clients: baselineClients },
            { name: 'ours', who: 'rls', clients: oursClients },
          ],
          shape,
          protocol,
          tenants,
          timing,
        );
        const baseline = results.get('baseline')!;
        const ours = results.get('ours')!;
        const ratio = ours.median / baseline.median;
        const paired = pairedRatio(baseline.rounds, ours.rounds);
        minima[protocol] = Math.min(minima[protocol], ratio);
        extra[`${shape.name}_${protocol}`] = round(ratio);
        extra[`${shape.name}_${protocol}_baseline_qps`] = Math.round(baseline.median);
        extra[`${shape.name}_${protocol}_ours_qps`] = Math.round(ours.median);
        console.log(
          `${shape.name.padEnd(5)} ${protocol.padEnd(8)} baseline ${fmtRate(baseline.median).padStart(7)} q/s | ` +
            `ours ${fmtRate(ours.median).padStart(7)} q/s | ratio ${ratio.toFixed(3)} (goal ≥ ${GOALS[protocol]}) ` +
            `${ratio >= GOALS[protocol] ? 'PASS' : 'FAIL'} (paired ${paired.toFixed(3)})   rounds: baseline ${baseline.rounds.join(' ')}; ` +
            `ours ${ours.rounds.join(' ')}`,
        );
      }
    }
    const pass = minima.prepared >= GOALS.prepared && minima.simple >= GOALS.simple;
    console.log(
      `minimum ratio: prepared ${minima.prepared.toFixed(3)} (goal ≥ ${GOALS.prepared}), ` +
        `simple ${minima.simple.toFixed(3)} (goal ≥ ${GOALS.simple}) → ${pass ? 'PASS' : 'FAIL'}`,
    );
    const loadEnd = loadAverage();
    console.log(
      `total time ${((Date.now() - started) / 1000).toFixed(1)} s; load average ${loadStart} at start, ${loadEnd} at end`,
    );
    summary = {
      bench: BENCH,
      unit: 'ratio',
      baseline: 1,
      ours: round(minima.prepared),
      ratio: round(minima.prepared),
      goal: GOALS.prepared,
      pass,
      min_prepared: round(minima.prepared),
      min_simple: round(minima.simple),
      goal_simple: GOALS.simple,
      ...extra,
      connections: CONNECTIONS,
      queries_per_tx: QUERIES_PER_TX,
      rounds: timing.rounds,
      round_seconds: timing.roundMs / 1000,
      load_start: loadStart,
      load_end: loadEnd,
      quick: args.quick,
    };
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await tenantry?.close();
    await db.close();
  }
  printResult(summary);
}
