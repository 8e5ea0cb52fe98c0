/**
 * move: a 1,000,000-row shared tenant (quick: 100,000) moved into its own database while four
 * writers keep inserting and updating its rows.
 *
 * - baseline: an offline move — the tenant's writes stopped for the whole copy, the same rows
 *   streamed with COPY into a scratch database (no indexes but the key, no verification): its
 *   write pause is the copy time.
 * - ours: `tenantry.moves.move(tenant, { to: 'database' })` under the write load: snapshot copy,
 *   trigger-captured changes caught up, fence, drain, checksums, catalog switch, old copy dropped.
 *
 * Reports total time, rows/s of the copy, the mover's write pause (fence → switch) and the
 * longest gap any writer saw between two acknowledged writes; checks no acknowledged write was
 * lost. Goal: write pause ≤ 1,000 ms, no write lost, no writer error (ratio = ours/baseline pause).
 */
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type CatalogRoles,
  type Tenantry,
} from '../src/index.js';
import { loadAverage, openDatabase, parseArgs, round } from './harness.js';
import { dropTenantryRolesOnClose, printJsonLine } from './load.js';

const BENCH = 'move';
const GOAL_PAUSE_MS = 1000;
const WRITERS = 4;

function retryable(error: unknown): boolean {
  if (isTenantryError(error, 'TENANT_MOVED')) return true;
  const cause = error instanceof Error ? error.cause : undefined;
  return [error, cause].some((e) => e instanceof pg.DatabaseError && e.code === '40001');
}

/** Writers inserting new rows and updating old ones; each remembers its acknowledged inserts. */
class Load {
  readonly acked: number[][] = [];
  readonly errors: unknown[] = [];
  writes = 0;
  retries = 0;
  maxGapMs = 0;
  #stop = false;
  readonly #done: Promise<void>[] = [];

  constructor(tenantry: Tenantry, tenant: string, rows: number) {
    for (let w = 0; w < WRITERS; w++) {
      const mine: number[] = [];
      this.acked.push(mine);
      this.#done.push(
        (async () => {
          let last = performance.now();
          for (let i = 0; !this.#stop; i++) {
            const key = rows * 2 + w * 10_000_000 + i;
            const write = () =>
              tenantry.withTenant(tenant, (db) =>
                db.transaction(async (tx) => {
                  await tx.query('INSERT INTO item (item_num, name, price) VALUES ($1, $2, 1)', [
                    key,
                    `w${w}`,
                  ]);
                  await tx.query('UPDATE item SET price = price + 1 WHERE item_num = $1', [
                    1 + ((key * 7919) % rows),
                  ]);
                }),
              );
            for (;;) {
              try {
                await write();
                break;
              } catch (error) {
                if (!retryable(error)) throw error;
                this.retries++;
                await new Promise((resolve) => setTimeout(resolve, 2));
              }
            }
            mine.push(key);
            this.writes++;
            const now = performance.now();
            this.maxGapMs = Math.max(this.maxGapMs, now - last);
            last = now;
          }
        })().catch((error: unknown) => {
          this.errors.push(error);
        }),
      );
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#done);
  }
}

async function copyOffline(url: string, scratchUrl: string, tenantId: number): Promise<number> {
  const source = new pg.Client({ connectionString: url });
  const target = new pg.Client({ connectionString: scratchUrl });
  await Promise.all([source.connect(), target.connect()]);
  try {
    await target.query(
      'CREATE TABLE item (tenant_id int, item_num int, name text, price numeric, PRIMARY KEY (tenant_id, item_num))',
    );
    const started = performance.now();
    await pipeline(
      source.query(copyTo(`COPY (SELECT * FROM item WHERE tenant_id = ${tenantId}) TO STDOUT`)),
      target.query(copyFrom('COPY item FROM STDIN')),
    );
    return performance.now() - started;
  } finally {
    await Promise.all([source.end(), target.end()]);
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const rows = args.quick ? 100_000 : 1_000_000;
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  let roles: CatalogRoles | undefined;
  let result: Parameters<typeof printJsonLine>[0] | undefined;
  try {
    tenantry = await createTenantry({ databaseUrl: db.url, masterKey: generateMasterKey() });
    roles = tenantry.roles;
    console.log(
      `${BENCH}: ${db.where}, PostgreSQL ${db.serverVersion}, one shared tenant of ${rows.toLocaleString('en')} rows`,
    );
    await tenantry.operator.query(
      'CREATE TABLE item (tenant_id int NOT NULL, item_num int NOT NULL, name text NOT NULL, price numeric NOT NULL, PRIMARY KEY (tenant_id, item_num))',
    );
    await tenantry.tables.multiTenant('public.item');
    const big = await tenantry.tenants.create({ name: 'Big', loginRole: true });
    await tenantry.tenants.create({ name: 'Neighbour' });
    const setupStart = performance.now();
    await tenantry.operator.query(
      `INSERT INTO item SELECT $1, g, 'item ' || g, (g % 1000) / 10.0 FROM generate_series(1, $2) g`,
      [big.id, rows],
    );
    await tenantry.operator.query('ANALYZE item');
    console.log(`setup: ${rows} rows in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);

    const scratchUrl = new URL(db.url);
    scratchUrl.pathname = '/move_scratch';
    const scratch = scratchUrl.toString();
    await tenantry.operator.query('DROP DATABASE IF EXISTS move_scratch');
    await tenantry.operator.query('CREATE DATABASE move_scratch');
    const baselineMs = await copyOffline(db.url, scratch, big.id);
    await tenantry.operator.query('DROP DATABASE move_scratch');
    console.log(
      `baseline (offline: writes stopped while the rows are copied): pause ${Math.round(baselineMs)} ms`,
    );

    const load = new Load(tenantry, 'Big', rows);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const writesBefore = load.writes;
    const started = performance.now();
    const report = await tenantry.moves.move('Big', { to: 'database' });
    const totalMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await load.stop();
    const acked = load.acked.flat();
    const { rows: found } = await tenantry.withTenant('Big', (tdb) =>
      tdb.query<{ n: number; missing: number }>(
        'SELECT count(*)::int AS n, (SELECT count(*)::int FROM unnest($1::int[]) k WHERE NOT EXISTS (SELECT 1 FROM item WHERE item_num = k)) AS missing FROM item',
        [acked],
      ),
    );
    const lost = found[0]?.missing ?? -1;
    const expected = rows + acked.length;
    const rowsPerS = report.copyMs > 0 ? (report.rows / report.copyMs) * 1000 : 0;
    const pass =
      report.pauseMs <= GOAL_PAUSE_MS && lost === 0 && load.errors.length === 0 && found[0]?.n === expected;
    console.log(
      `ours: total ${(totalMs / 1000).toFixed(1)} s; copy ${report.rows} rows in ${(report.copyMs / 1000).toFixed(1)} s, verified in ${(report.snapshotVerifyMs / 1000).toFixed(1)} s ` +
        `(${Math.round(rowsPerS)} rows/s); ${report.changes} changes caught up; ${report.verifiedTables} tables verified`,
    );
    console.log(
      `writes during the move: ${load.writes - writesBefore} by ${WRITERS} writers (${load.retries} retried), ` +
        `longest gap between acknowledged writes ${Math.round(load.maxGapMs)} ms; rows after ${found[0]?.n} (expected ${expected}), lost ${lost}, errors ${load.errors.length}`,
    );
    console.log(
      `write pause: baseline ${Math.round(baselineMs)} ms, ours ${report.pauseMs} ms, ratio ${(report.pauseMs / baselineMs).toFixed(4)}; ` +
        `goal ≤ ${GOAL_PAUSE_MS} ms → ${pass ? 'PASS' : 'FAIL'}; load average ${loadAverage()}`,
    );
    const parts = report.pause;
    if (parts) {
      console.log(
        `pause parts: waiting for open transactions ${parts.waitMs} ms, draining ${parts.drainMs} ms, verifying (${parts.verify}) ${parts.verifyMs} ms`,
      );
    }
    for (const error of load.errors.slice(0, 3)) console.log('writer error:', error);
    result = {
      bench: BENCH,
      unit: 'ms write pause',
      baseline: Math.round(baselineMs),
      ours: report.pauseMs,
      ratio: round(report.pauseMs / baselineMs, 4),
      goal: `write pause <= ${GOAL_PAUSE_MS} ms, no write lost`,
      pass,
      rows,
      total_s: round(totalMs / 1000, 1),
      copy_rows_per_s: Math.round(rowsPerS),
      snapshot_verify_s: round(report.snapshotVerifyMs / 1000, 1),
      changes: report.changes,
      max_writer_gap_ms: Math.round(load.maxGapMs),
      pause_wait_ms: parts?.waitMs,
      pause_drain_ms: parts?.drainMs,
      pause_verify_ms: parts?.verifyMs,
      writes_during_move: load.writes - writesBefore,
      retries: load.retries,
      lost,
      errors: load.errors.length,
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
