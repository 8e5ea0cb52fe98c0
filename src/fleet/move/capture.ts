import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { TenantryError } from '../../errors.js';
import type { MoveTable } from './tables.js';

const q = pg.escapeIdentifier;
const captureSql = readFileSync(
  fileURLToPath(new URL('../../sql/dataplane/move-capture.sql', import.meta.url)),
  'utf8',
);

/** A queryable connection (pg.Client or pg.PoolClient). */
export type Db = Pick<pg.ClientBase, 'query'>;

/** The name of a moving tenant's capture trigger on a table (`kind`: i, u, d or all). */
function triggerName(tenantId: number, kind: string): string {
  return `tenantry_move_${tenantId < 0 ? `n${-tenantId}` : tenantId}_${kind}`;
}

/**
 * Installs the capture schema (idempotent) and the moving tenant's triggers on every table of the
 * old copy, in one transaction. On tables other tenants' rows share (a shared tenant's, and the
 * catalog's sequence values of a schema tenant) the triggers fire for the tenant's rows only (WHEN
 * on the tenant column); on the tenant's own tables (its schema, its database) on every row.
 */
export async function installCapture(db: Db, tenantId: number, tables: readonly MoveTable[]): Promise<void> {
  await db.query('BEGIN');
  try {
    // never queue behind a long transaction while holding up every writer of a shared table
    await db.query("SET LOCAL lock_timeout = '5s'");
    const { rows: installed } = await db.query<{ found: boolean }>(
      "SELECT to_regclass('tenantry_move.log') IS NOT NULL AS found",
    );
    if (!installed[0]?.found) await db.query(captureSql);
    // a rerun only adds what is missing: dropping a live trigger would lock out the writers
    const { rows: present } = await db.query<{ key: string }>(
      "SELECT tgrelid::int || ' ' || tgname AS key FROM pg_trigger WHERE tgname LIKE 'tenantry\\_move\\_%'",
    );
    const existing = new Set(present.map((r) => r.key));
    for (const table of tables) {
      const args = `'${Math.trunc(tenantId)}', ${pg.escapeLiteral(`{${table.key.join(',')}}`)}`;
      const column = q(table.tenantColumn);
      const on = table.source;
      const id = Math.trunc(tenantId);
      const triggers: [string, string, string][] = table.sharedInSource
        ? [
            ['i', 'INSERT', `WHEN (NEW.${column} = ${id})`],
            ['u', 'UPDATE', `WHEN (OLD.${column} = ${id} OR NEW.${column} = ${id})`],
            ['d', 'DELETE', `WHEN (OLD.${column} = ${id})`],
          ]
        : [['all', 'INSERT OR UPDATE OR DELETE', '']];
      const { rows: rel } = await db.query<{ oid: number }>('SELECT $1::regclass::oid::int AS oid', [on]);
      for (const [kind, events, when] of triggers) {
        const name = q(triggerName(tenantId, kind));
        if (existing.has(`${rel[0]?.oid} ${triggerName(tenantId, kind)}`)) continue;
        await db.query(
          `CREATE TRIGGER ${name} BEFORE ${events} ON ${on} FOR EACH ROW ${when}
           EXECUTE FUNCTION tenantry_move.capture(${args})`,
        );
      }
    }
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Removes the tenant's triggers, fence and log rows from the old copy (idempotent). */
export async function removeCapture(db: Db, tenantId: number, tables: readonly MoveTable[]): Promise<void> {
  const { rows } = await db.query<{ found: boolean }>(
    "SELECT to_regclass('tenantry_move.log') IS NOT NULL AS found",
  );
  if (!rows[0]?.found) return;
  await db.query('BEGIN');
  try {
    for (const table of tables) {
      const exists = await db.query('SELECT to_regclass($1) IS NOT NULL AS found', [table.source]);
      if (!(exists.rows[0] as { found: boolean }).found) continue;
      for (const kind of ['i', 'u', 'd', 'all']) {
        await db.query(`DROP TRIGGER IF EXISTS ${q(triggerName(tenantId, kind))} ON ${table.source}`);
      }
    }
    await db.query('DELETE FROM tenantry_move.log WHERE tenant_id = $1', [tenantId]);
    await db.query('DELETE FROM tenantry_move.fence WHERE tenant_id = $1', [tenantId]);
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Refuses (or again allows) the tenant's writes to the old copy; committed at once. */
export async function setFence(db: Db, tenantId: number, fenced: boolean): Promise<void> {
  await db.query(
    fenced
      ? 'INSERT INTO tenantry_move.fence (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING'
      : 'DELETE FROM tenantry_move.fence WHERE tenant_id = $1',
    [tenantId],
  );
}

/**
 * Waits until every transaction that was open in this database when it was called has ended —
 * as CREATE INDEX CONCURRENTLY does: after a fence (or the triggers) committed, no write can slip
 * past them any more. Throws `TENANTRY_ERR_MOVE_TIMEOUT` after `timeoutMs`.
 */
export async function waitForOlderTransactions(
  db: Db,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const { rows } = await db.query<{ vxids: string[] | null }>(
    `SELECT array_agg(l.virtualtransaction) AS vxids
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted
       AND l.pid <> pg_backend_pid() AND a.datname = current_database()`,
  );
  const vxids = rows[0]?.vxids ?? [];
  if (vxids.length === 0) return;
  const deadline = Date.now() + timeoutMs;
  for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
    const { rows: open } = await db.query<{ open: number }>(
      `SELECT count(*)::int AS open FROM pg_locks
       WHERE locktype = 'virtualxid' AND mode = 'ExclusiveLock' AND virtualtransaction = ANY($1)`,
      [vxids],
    );
    if ((open[0]?.open ?? 0) === 0) return;
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    if (Date.now() > deadline) {
      throw new TenantryError('MOVE_TIMEOUT', {
        problem: `${open[0]?.open} transaction(s) that were open at the fence did not end within ${timeoutMs} ms`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** One captured change: the key of a row of the table with oid `rel`. */
export interface Captured {
  readonly id: string;
  readonly rel: number;
  readonly key: Record<string, unknown>;
}

/**
 * Up to `limit` captured changes, oldest first. No watermark: log ids are taken when a row is
 * written, not when its transaction commits, so a later id can become visible before an earlier
 * one — changes leave the log only once applied ({@link pruneLog}).
 */
export async function readLog(db: Db, tenantId: number, limit: number): Promise<Captured[]> {
  const { rows } = await db.query<{ id: string; rel: number; key: Record<string, unknown> }>(
    `SELECT id::text, rel::int AS rel, key FROM tenantry_move.log
     WHERE tenant_id = $1 ORDER BY id LIMIT $2`,
    [tenantId, limit],
  );
  return rows;
}

/** Forgets captured changes once applied to the new copy. */
export async function pruneLog(db: Db, ids: readonly string[]): Promise<void> {
  await db.query('DELETE FROM tenantry_move.log WHERE id = ANY($1::bigint[])', [[...ids]]);
}
