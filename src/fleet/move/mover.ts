import pg from 'pg';
import type { Tenant } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { installCapture, pruneLog, readLog, setFence, waitForOlderTransactions, type Db } from './capture.js';
import { switchPlacement } from './cutover.js';
import { onPlacement, type MoverDeps } from './deps.js';
import { dropOldCopy, prepareNewCopy } from './ends.js';
import { describe } from './plan.js';
import {
  applyChanges,
  BATCH,
  checksums,
  advanceSequences,
  copySnapshot,
  deleteTenantRows,
  prepareSession,
  TouchedKeys,
  type TableSum,
} from './rows.js';
import { moveTables, type MoveTable } from './tables.js';
import type { MoveOptions, MoveProgress, MoveReport, MoveRow } from './types.js';

/** One move run: from the phase recorded in the catalog to the end. */
export class MoveRun {
  readonly #deps: MoverDeps;
  readonly #options: MoveOptions;
  #row: MoveRow;
  #tenant: Tenant;
  readonly #report: {
    rows: number;
    changes: number;
    copyMs: number;
    snapshotVerifyMs: number;
    pauseMs: number;
    verified: number;
  };
  /** Keys changed since a snapshot copy this run verified; undefined after a resume (then all is re-checked). */
  #touched: TouchedKeys | undefined;
  /** How long each part of the cut-over took (ms). */
  readonly #pause = { waitMs: 0, drainMs: 0, verifyMs: 0, verify: 'full' as 'full' | 'changed rows' };

  constructor(deps: MoverDeps, tenant: Tenant, row: MoveRow, options: MoveOptions) {
    this.#deps = deps;
    this.#tenant = tenant;
    this.#row = row;
    this.#options = options;
    this.#report = { rows: 0, changes: 0, copyMs: 0, snapshotVerifyMs: 0, pauseMs: 0, verified: 0 };
  }

  #progress(event: MoveProgress): void {
    this.#options.onProgress?.(event);
  }

  async #phase(phase: MoveRow['phase'], extra: { applied?: string; stats?: Record<string, unknown> } = {}) {
    await this.#deps.admin.query(
      `UPDATE tenantry.tenant_move SET phase = $2, applied = coalesce($3::bigint, applied),
              stats = stats || $4::jsonb, updated_at = now() WHERE tenant_id = $1`,
      [this.#tenant.id, phase, extra.applied ?? null, JSON.stringify(extra.stats ?? {})],
    );
    this.#row = { ...this.#row, phase, applied: extra.applied ?? this.#row.applied };
  }

  /** Runs the remaining phases; answers the report. */
  async run(): Promise<MoveReport> {
    const started = Date.now();
    if (this.#row.phase === 'prepare') await this.#prepare();
    if (this.#row.phase === 'copy' || this.#row.phase === 'catchup') {
      await onPlacement(this.#deps, this.#row.source, (source) =>
        onPlacement(this.#deps, this.#row.target, async (target) => {
          await prepareSession(source, this.#tenant.id);
          await prepareSession(target, this.#tenant.id);
          const { tables, byOid } = await moveTables(this.#tenant.id, this.#deps.admin, {
            source,
            target,
            from: this.#row.source,
            to: this.#row.target,
          });
          if (this.#row.phase === 'copy') await this.#copy(source, target, tables);
          await this.#catchUp(source, target, tables, byOid);
        }),
      );
    }
    await this.#cleanup();
    const totalMs = Date.now() - started;
    const stats = this.#row.stats;
    return {
      tenant: this.#tenant.name,
      from: this.#row.source,
      to: this.#row.target,
      rows: this.#report.rows || Number(stats['rows'] ?? 0),
      changes: this.#report.changes,
      copyMs: this.#report.copyMs || Number(stats['copyMs'] ?? 0),
      snapshotVerifyMs: this.#report.snapshotVerifyMs || Number(stats['snapshotVerifyMs'] ?? 0),
      pauseMs: this.#report.pauseMs || Number(stats['pauseMs'] ?? 0),
      totalMs,
      verifiedTables: this.#report.verified || Number(stats['verifiedTables'] ?? 0),
      pause: this.#report.pauseMs ? { ...this.#pause } : undefined,
    };
  }

  async #prepare(): Promise<void> {
    await prepareNewCopy(this.#deps, this.#tenant, this.#row, (e) => this.#progress(e));
    await this.#phase('copy');
  }

  /** After the switch: the old copy goes (its roles, rows or database), then the move row. */
  async #cleanup(): Promise<void> {
    await dropOldCopy(this.#deps, this.#tenant, this.#row, this.#options, (e) => this.#progress(e));
  }

  async #copy(source: pg.ClientBase, target: pg.ClientBase, tables: readonly MoveTable[]): Promise<void> {
    const id = this.#tenant.id;
    await installCapture(source, id, tables);
    // every write not in the snapshot below is now captured: transactions older than the triggers are over
    await waitForOlderTransactions(source, this.#options.fenceTimeoutMs ?? 30_000, this.#options.signal);
    await deleteTenantRows(target, id, tables, 'target'); // what an interrupted copy left
    const started = Date.now();
    let rows = 0;
    await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      rows = await copySnapshot(
        source,
        target,
        id,
        tables,
        (table, n) => this.#progress({ phase: 'copy', table: table.name, rows: (rows += n) }),
        this.#options.signal,
      );
      // the copy against its own snapshot, outside the write pause: the cut-over then re-checks
      // only the rows changed since (and every count)
      this.#report.copyMs = Date.now() - started;
      this.#progress({ phase: 'copy', message: `verifying ${rows} copied rows` });
      const [before, after] = await Promise.all([
        checksums(source, id, tables, 'source'),
        checksums(target, id, tables, 'target'),
      ]);
      this.#compare(before, after, tables);
      this.#touched = new TouchedKeys();
    } finally {
      await source.query('COMMIT').catch(() => undefined);
    }
    this.#report.rows = rows;
    this.#report.snapshotVerifyMs = Date.now() - started - this.#report.copyMs;
    await this.#phase('catchup', {
      applied: '0',
      stats: { rows, copyMs: this.#report.copyMs, snapshotVerifyMs: this.#report.snapshotVerifyMs },
    });
  }

  /** Applies captured changes until few remain, then fences, drains, verifies and switches. */
  async #catchUp(source: Db, target: Db, tables: readonly MoveTable[], byOid: Map<number, MoveTable>) {
    const id = this.#tenant.id;
    const below = this.#options.cutoverBelow ?? 200;
    for (;;) {
      this.#options.signal?.throwIfAborted();
      const applied = await this.#drainOnce(source, target, byOid);
      if (applied >= below) continue;
      await setFence(source, id, true);
      const fenced = Date.now();
      this.#progress({ phase: 'cutover', message: 'writes paused: draining the last changes' });
      try {
        await waitForOlderTransactions(source, this.#options.fenceTimeoutMs ?? 30_000);
        const waited = Date.now();
        this.#pause.waitMs = waited - fenced;
        while ((await this.#drainOnce(source, target, byOid)) > 0);
        const drained = Date.now();
        this.#pause.drainMs = drained - waited;
        await this.#verify(source, target, tables);
        await advanceSequences(target, tables, this.#tenant.id);
        this.#pause.verifyMs = Date.now() - drained;
      } catch (error) {
        await setFence(source, id, false).catch(() => undefined);
        throw error;
      }
      const pauseMs = Date.now() - fenced;
      this.#report.pauseMs = pauseMs;
      try {
        await switchPlacement(this.#deps.admin, this.#deps.roles, this.#deps.credentials, {
          tenant: this.#tenant,
          source: this.#row.source,
          target: this.#row.target,
          stats: {
            pauseMs: Date.now() - fenced,
            verifiedTables: tables.length,
            changes: this.#report.changes,
            ...this.#pause,
          },
        });
      } catch (error) {
        // Not switched: the tenant stays on its old copy and must be able to write there again.
        // (Switched after all — the commit went through before the error — or unknown: the fence
        // stays, so no stale process writes to the copy the tenant left; a rerun finishes.)
        const { rows } = await this.#deps.admin
          .query<{ epoch: number }>('SELECT placement_epoch AS epoch FROM tenantry.tenant WHERE id = $1', [
            id,
          ])
          .catch(() => ({ rows: [] as { epoch: number }[] }));
        if (rows[0]?.epoch === this.#tenant.placementEpoch)
          await setFence(source, id, false).catch(() => undefined);
        throw error;
      }
      this.#report.pauseMs = Date.now() - fenced;
      this.#row = { ...this.#row, phase: 'cleanup' };
      this.#progress({
        phase: 'cutover',
        message: `switched to ${describe(this.#row.target)} after a ${pauseMs} ms write pause`,
      });
      return;
    }
  }

  /** Applies one batch of captured changes; answers how many. */
  async #drainOnce(source: Db, target: Db, byOid: Map<number, MoveTable>): Promise<number> {
    const changes = await readLog(source, this.#tenant.id, BATCH);
    if (changes.length === 0) return 0;
    await target.query('BEGIN');
    try {
      await applyChanges(source, target, changes, byOid);
      await target.query('COMMIT');
    } catch (error) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    const last = changes[changes.length - 1]?.id ?? this.#row.applied;
    await pruneLog(
      source,
      changes.map((c) => c.id),
    );
    await this.#phase('catchup', { applied: last });
    this.#touched?.add(changes, byOid);
    this.#report.changes += changes.length;
    this.#progress({ phase: 'catchup', changes: this.#report.changes });
    return changes.length;
  }

  /**
   * Under the fence: every table's row count, and the checksums of the rows changed since the
   * verified snapshot copy — or, after a resume, of every row.
   */
  async #verify(source: Db, target: Db, tables: readonly MoveTable[]): Promise<void> {
    const id = this.#tenant.id;
    if (!this.#touched) {
      const [before, after] = await Promise.all([
        checksums(source, id, tables, 'source'),
        checksums(target, id, tables, 'target'),
      ]);
      this.#compare(before, after, tables);
      return;
    }
    // Rows nobody touched since the snapshot copy are equal on both sides (that copy was compared
    // with its snapshot); every touched row is compared here, present or gone, so the counts
    // follow without counting every row under the fence.
    this.#pause.verify = 'changed rows';
    const keys = this.#touched.byTable();
    const [before, after] = await Promise.all([
      checksums(source, id, tables, 'source', keys),
      checksums(target, id, tables, 'target', keys),
    ]);
    this.#compare(before, after, tables);
  }

  #compare(
    before: ReadonlyMap<string, TableSum>,
    after: ReadonlyMap<string, TableSum>,
    tables: readonly MoveTable[],
  ): void {
    for (const table of tables) {
      const a = before.get(table.name);
      const b = after.get(table.name);
      if (a?.rows !== b?.rows || a?.sum !== b?.sum) {
        throw new TenantryError('MOVE_VERIFY_FAILED', {
          tenant: this.#tenant.name,
          problem: `${table.name}: ${a?.rows} rows (checksum ${a?.sum}) in the old copy, ${b?.rows} (${b?.sum}) in the new one`,
        });
      }
    }
    this.#report.verified = tables.length;
  }
}
