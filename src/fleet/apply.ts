import type pg from 'pg';
import type { RegisteredTable } from '../catalog/index.js';
import type { LoadedMigration, MigrationDb, MigrationScope, MigrationStep } from './migration-source.js';
import { reshape, type ReshapeContext } from './reshape.js';
import { snapshot, type Target } from './target.js';
import { detachViews, needsRebuild, type Detached } from './view-rebuild.js';

/** How one migration is applied to one target (see {@link applyStep}). */
export interface StepPlan {
  /** Connected to the target's database; not in a transaction. */
  readonly client: pg.ClientBase;
  readonly target: Target;
  readonly migration: LoadedMigration;
  readonly scope: MigrationScope;
  /** search_path the step's statements run with. */
  readonly searchPath: string;
  /** Database targets: the catalog's registry (others read it from their own database). */
  readonly registry?: readonly RegisteredTable[];
  readonly reshape: ReshapeContext;
  /** lock_timeout of the step's transaction, so a busy table fails one tenant instead of stalling. */
  readonly lockTimeoutMs: number;
  /** Whether the target is already at this version (runs first in the transaction; may lock). */
  readonly isApplied: (client: pg.ClientBase) => Promise<boolean>;
  /** Records the new version inside the transaction. */
  readonly record: (client: pg.ClientBase) => Promise<void>;
}

const CATALOG_PATH = 'pg_catalog, pg_temp';

async function setPath(client: pg.ClientBase, path: string): Promise<void> {
  await client.query("SELECT set_config('search_path', $1, true)", [path]);
}

async function runStep(client: pg.ClientBase, step: MigrationStep, plan: StepPlan): Promise<void> {
  await setPath(client, plan.searchPath);
  if (typeof step === 'string') {
    await client.query(step);
    return;
  }
  const db: MigrationDb = {
    scope: plan.scope,
    target: plan.target.label,
    query: (text, values) => client.query(text, values === undefined ? undefined : [...values]),
  };
  await step(db);
}

/**
 * Applies `plan.migration`'s step for `plan.scope` to one target in one transaction: the
 * step, then {@link reshape} (privileges and views follow the new shape), then the version
 * record — all or nothing. A step that PostgreSQL refuses because views depend on what it
 * changes (dropping, retyping or renaming a column) runs again with those views taken down
 * and rebuilt after. Answers `skipped` when the target already had the version.
 */
export async function applyStep(plan: StepPlan): Promise<'applied' | 'skipped'> {
  const { client, target } = plan;
  const step = plan.scope === 'shared' ? plan.migration.shared : plan.migration.tenant;
  await client.query('BEGIN');
  try {
    await client.query("SELECT set_config('lock_timeout', $1, true)", [`${plan.lockTimeoutMs}ms`]);
    if (await plan.isApplied(client)) {
      await client.query('COMMIT');
      return 'skipped';
    }
    await setPath(client, CATALOG_PATH);
    const before = await snapshot(client, target, plan.registry);
    let detached: Detached | undefined;
    if (step !== undefined && step !== '') {
      await client.query('SAVEPOINT tenantry_step');
      try {
        await runStep(client, step, plan);
      } catch (error) {
        if (!needsRebuild(error)) throw error;
        await client.query('ROLLBACK TO SAVEPOINT tenantry_step');
        await setPath(client, CATALOG_PATH);
        const roots = [...before.relations.values()].flatMap((rel) => (rel ? [rel.oid] : []));
        detached = await detachViews(client, roots, false);
        await runStep(client, step, plan);
      }
    }
    await setPath(client, CATALOG_PATH);
    const after = await snapshot(client, target, plan.registry);
    await reshape(client, target, before, after, plan.reshape, detached);
    await plan.record(client);
    await client.query('COMMIT');
    return 'applied';
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** One line for a failed step: the PostgreSQL error with its SQLSTATE, or the error's message. */
export function describeError(error: unknown): { message: string; sqlstate?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const where = (error as { where?: unknown }).where;
    const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
    const context = typeof where === 'string' && where ? ` (${where.split('\n')[0]})` : '';
    return {
      message: `${sqlstate ? `${sqlstate}: ` : ''}${error.message}${context}`,
      ...(sqlstate === undefined ? {} : { sqlstate }),
    };
  }
  return { message: String(error) };
}
