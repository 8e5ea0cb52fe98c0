import type pg from 'pg';
import { TenantryError } from '../errors.js';

/** Advisory-lock key held (session-level) by a running `tenantry migrate`: one run per catalog. */
export const MIGRATE_LOCK = 7_303_446_190;

/**
 * Advisory-lock key of the templates: cloning holds it shared (migration 019's clone_schema
 * takes it per transaction), changing a template holds it exclusively, so a clone never sees a
 * template half-migrated and always records the version it really copied.
 */
export const TEMPLATE_LOCK = 7_303_446_191;

/**
 * Runs `fn` while `client` holds the template lock (`shared` for cloning, `exclusive` for
 * changing a template), then releases it.
 */
export async function withTemplateLock<T>(
  client: pg.ClientBase,
  mode: 'shared' | 'exclusive',
  fn: () => Promise<T>,
): Promise<T> {
  const suffix = mode === 'shared' ? '_shared' : '';
  await client.query(`SELECT pg_advisory_lock${suffix}($1)`, [TEMPLATE_LOCK]);
  try {
    return await fn();
  } finally {
    await client.query(`SELECT pg_advisory_unlock${suffix}($1)`, [TEMPLATE_LOCK]).catch(() => undefined);
  }
}

/**
 * Takes the migrate lock on `client` (which must stay open for the run) or throws
 * `TENANTRY_ERR_MIGRATION_LOCKED`, naming the session that holds it.
 */
export async function takeMigrateLock(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
    MIGRATE_LOCK,
  ]);
  if (rows[0]?.ok) return;
  const holder = await client.query<{ pid: number; since: Date | null; app: string | null }>(
    `SELECT a.pid, a.backend_start AS since, a.application_name AS app
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1`,
    [MIGRATE_LOCK],
  );
  const h = holder.rows[0];
  throw new TenantryError('MIGRATION_LOCKED', {
    holder: h
      ? `by backend ${h.pid}${h.app ? ` (${h.app})` : ''} since ${h.since?.toISOString() ?? '?'}`
      : '',
  });
}

/** Releases the migrate lock taken by {@link takeMigrateLock}. */
export async function releaseMigrateLock(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [MIGRATE_LOCK]);
}
