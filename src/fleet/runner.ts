import pg from 'pg';
import type { TenantRef } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { applyStep, describeError } from './apply.js';
import { appliedMigrations, fleetTenants, templateRows } from './fleet-store.js';
import { releaseMigrateLock, takeMigrateLock, withTemplateLock } from './locks.js';
import {
  checkMigrations,
  loadMigrationDir,
  type LoadedMigration,
  type Migration,
} from './migration-source.js';
import { pendingMigrations, planRun, type PlannedTarget } from './plan.js';
import {
  stepPlan,
  type FleetContext,
  type MigrationProgress,
  type Run,
  type TargetFailure,
} from './run-context.js';
import { readRegistry, snapshot } from './target.js';
import { migrateTemplates, prepareTemplates } from './template-phase.js';
import { migrateTenants } from './tenant-phase.js';

/** Options of a migration run (`tenantry migrate`). */
export interface MigrateOptions {
  /** Directory of migration files (`<version>_<name>.sql|.js|.mjs`). */
  readonly dir?: string;
  /** Migrations given in code (instead of, or besides, `dir`). */
  readonly migrations?: readonly Migration[];
  /** Only report what would run; change nothing. */
  readonly dryRun?: boolean;
  /** Tenants migrated at once (1–64, default 4); each holds one connection. */
  readonly concurrency?: number;
  /** Limit the tenant phase to this tenant (the shared tables and templates still go first). */
  readonly tenant?: TenantRef;
  /** Aborting stops starting tenants; those running finish; a rerun continues. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: MigrationProgress) => void;
  /** lock_timeout of each step (default 10,000 ms): a table a tenant keeps busy fails that tenant. */
  readonly lockTimeoutMs?: number;
}

/** What a migration run did (or, with `dryRun`, would do). */
export interface MigrationReport {
  readonly dryRun: boolean;
  /** The highest version among the migrations given. */
  readonly latest: number;
  /** The shared tables' version before and after, and the versions applied to them. */
  readonly shared: { readonly from: number; readonly to: number; readonly applied: readonly number[] };
  readonly tenants: {
    readonly total: number;
    readonly migrated: number;
    readonly failed: number;
    /** Not started (interrupted run). */
    readonly pending: number;
  };
  readonly failures: readonly TargetFailure[];
  /** Every target that was (or would be) behind, with the versions it gets. */
  readonly plan: readonly PlannedTarget[];
  readonly interrupted: boolean;
  readonly durationMs: number;
}

/** The migrations of `options` (dir and/or code), checked and ordered. */
export async function gatherMigrations(
  options: Pick<MigrateOptions, 'dir' | 'migrations'>,
): Promise<LoadedMigration[]> {
  const fromDir = options.dir === undefined ? [] : await loadMigrationDir(options.dir);
  return checkMigrations([...fromDir, ...(options.migrations ?? [])]);
}

function concurrencyOf(value: number | undefined): number {
  const n = value ?? 4;
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'concurrency',
      problem: `${String(value)} is not an integer from 1 to 64`,
    });
  }
  return n;
}

/**
 * Runs the application's migrations across the fleet (docs/fleet.md): under the migrate lock,
 * the shared tables (and the templates, under the template lock) first, then every schema and
 * database tenant behind, `concurrency` at a time. Throws `TENANTRY_ERR_MIGRATION_LOCKED`,
 * `TENANTRY_ERR_MIGRATION_MISMATCH`, `TENANTRY_ERR_INVALID_ARGUMENT`; per-target failures are
 * in the report.
 */
export async function runMigrations(ctx: FleetContext, options: MigrateOptions): Promise<MigrationReport> {
  const started = Date.now();
  const concurrency = concurrencyOf(options.concurrency);
  const migrations = await gatherMigrations(options);
  const only = options.tenant === undefined ? undefined : (await ctx.resolveTenant(options.tenant)).id;
  const latest = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  const applied = await appliedMigrations(ctx.admin);
  const current = applied.reduce((max, a) => Math.max(max, a.version), 0);
  const pending = pendingMigrations(migrations, applied);
  const target = Math.max(current, latest);
  if (options.dryRun) {
    const tenants = await fleetTenants(ctx.admin, only);
    const plan = planRun(migrations, current, target, await templateRows(ctx.admin), tenants);
    const behind = tenants.filter((t) => t.version < target).length;
    return {
      dryRun: true,
      latest,
      shared: { from: current, to: current, applied: [] },
      tenants: { total: behind, migrated: 0, failed: 0, pending: behind },
      failures: [],
      plan,
      interrupted: false,
      durationMs: Date.now() - started,
    };
  }
  // The run stops starting targets when the caller aborts, or when the session holding the
  // migrate lock ends (the lock is gone: another run could start).
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  let lockLost = false;
  const lock = new pg.Client({ connectionString: ctx.url, application_name: 'tenantry-migrate' });
  lock.on('error', () => {
    lockLost = true;
    stop.abort();
  });
  await lock.connect();
  const pool = new pg.Pool({
    connectionString: ctx.url,
    max: concurrency + 1,
    application_name: 'tenantry-migrate',
  });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  try {
    await takeMigrateLock(lock);
    const { rows } = await lock.query<{ path: string }>("SELECT current_setting('search_path') AS path");
    const run: Run = {
      ctx,
      migrations,
      pool,
      basePath: rows[0]?.path ?? 'public',
      lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
      failures: [],
      progress: options.onProgress ?? (() => undefined),
      signal: stop.signal,
    };
    const done: number[] = [];
    await withTemplateLock(lock, 'exclusive', async () => {
      await prepareTemplates(run, lock, current);
      const client = await pool.connect();
      try {
        for (const migration of pending) {
          if (run.signal?.aborted) break;
          try {
            await applyStep(stepPlan(run, { kind: 'shared', label: 'shared' }, client, migration));
            done.push(migration.version);
            run.progress({
              phase: 'shared',
              done: done.length,
              failed: 0,
              total: pending.length,
              target: 'shared',
            });
          } catch (error) {
            const { message, sqlstate } = describeError(error);
            run.failures.push({
              target: 'shared',
              version: migration.version,
              error: message,
              ...(sqlstate ? { sqlstate } : {}),
            });
            run.progress({
              phase: 'shared',
              done: done.length,
              failed: 1,
              total: pending.length,
              target: 'shared',
              error: message,
            });
            break;
          }
        }
      } finally {
        client.release();
      }
      const registry = await readRegistry(pool);
      run.catalog = {
        registry,
        snapshot: await snapshot(pool, { kind: 'shared', label: 'shared' }, registry),
      };
      await migrateTemplates(run, done.at(-1) ?? current);
    });
    await ctx.reload().catch(() => undefined);
    const reached = done.at(-1) ?? current;
    const sharedFailed = run.failures.some((f) => f.target === 'shared');
    const tenants = sharedFailed ? [] : (await fleetTenants(pool, only)).filter((t) => t.version < reached);
    const result = await migrateTenants(run, tenants, reached, concurrency);
    if (lockLost) {
      run.failures.push({
        target: 'run',
        version: reached,
        error:
          'the connection holding the migrate lock ended, so the run stopped; run `tenantry migrate` again',
      });
    }
    return {
      dryRun: false,
      latest,
      shared: { from: current, to: reached, applied: done },
      tenants: { total: tenants.length, ...result },
      failures: run.failures,
      plan: [],
      interrupted: stop.signal.aborted,
      durationMs: Date.now() - started,
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await releaseMigrateLock(lock).catch(() => undefined);
    await lock.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
  }
}
