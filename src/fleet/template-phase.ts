import pg from 'pg';
import { applyStep, describeError } from './apply.js';
import { registryFingerprint, saveTemplate, templateRows, type TemplateRow } from './fleet-store.js';
import type { LoadedMigration } from './migration-source.js';
import { stepPlan, type Run } from './run-context.js';
import type { Target } from './target.js';

/** The template schema new schema tenants are cloned from. */
export const SCHEMA_TEMPLATE: Target = {
  kind: 'schema-template',
  label: 'template schema',
  schema: 'tenantry_template',
};

function databaseTemplate(run: Run, row: TemplateRow): Target {
  return {
    kind: 'database-template',
    label: `template database on ${row.server ?? 'main'}`,
    server: row.server ?? 'main',
    database: row.objectName,
    role: run.ctx.templates.name,
  };
}

/** Applies `versions` to a template on `client`, one transaction each; false once one fails. */
async function migrate(
  run: Run,
  target: Target,
  client: pg.ClientBase,
  versions: readonly LoadedMigration[],
) {
  for (const migration of versions) {
    try {
      await applyStep(stepPlan(run, target, client, migration));
    } catch (error) {
      const { message, sqlstate } = describeError(error);
      run.failures.push({
        target: target.label,
        version: migration.version,
        error: message,
        ...(sqlstate === undefined ? {} : { sqlstate }),
      });
      run.progress({
        phase: 'templates',
        done: 0,
        failed: 1,
        total: 1,
        target: target.label,
        error: message,
      });
      return false;
    }
  }
  return true;
}

/** Forgets a template database that is gone or broken: the next database tenant builds it again. */
async function forget(run: Run, row: TemplateRow): Promise<void> {
  await run.pool.query('DELETE FROM tenantry.migration_template WHERE name = $1', [row.name]);
}

const between = (run: Run, from: number, to: number) =>
  run.migrations.filter((m) => m.version > from && m.version <= to);

/**
 * Before the shared phase (the caller holds the template lock exclusively): the template schema
 * exists, has caught up with the shared tables' version `current`, and has a copy of every
 * registered table; a template database that is behind or was built for another registry is
 * rebuilt from the base tables.
 */
export async function prepareTemplates(run: Run, lock: pg.ClientBase, current: number): Promise<void> {
  const rows = await templateRows(run.pool);
  const schema = rows.find((r) => r.name === 'schema');
  if (!schema) {
    await run.pool.query('SELECT tenantry.sync_schema_template()');
    await saveTemplate(run.pool, {
      name: 'schema',
      server: null,
      objectName: 'tenantry_template',
      version: current,
      fingerprint: null,
    });
  } else if (schema.version < current) {
    const client = await run.pool.connect();
    try {
      await migrate(run, SCHEMA_TEMPLATE, client, between(run, schema.version, current));
    } finally {
      client.release();
    }
  }
  await run.pool.query('SELECT tenantry.sync_schema_template()');
  for (const row of rows.filter((r) => r.name.startsWith('database:'))) {
    if (row.version === current && (await run.ctx.templates.usable(lock, row.server ?? 'main'))) continue;
    try {
      await run.ctx.templates.build(lock, row.server ?? 'main');
    } catch (error) {
      await forget(run, row); // (its next use builds it again)
      const { message } = describeError(error);
      run.failures.push({ target: databaseTemplate(run, row).label, version: current, error: message });
    }
  }
}

/**
 * After the shared phase: applies the versions the templates lack, up to `to`, then brings
 * the template schema up to the registry and records each template database's fingerprint.
 * Failures are recorded; a template database left behind is rebuilt on its next use.
 */
export async function migrateTemplates(run: Run, to: number): Promise<void> {
  const rows = await templateRows(run.pool);
  const schema = rows.find((r) => r.name === 'schema');
  if (schema && schema.version < to) {
    const client = await run.pool.connect();
    try {
      await migrate(run, SCHEMA_TEMPLATE, client, between(run, schema.version, to));
    } finally {
      client.release();
    }
  }
  await run.pool.query('SELECT tenantry.sync_schema_template()');
  const fingerprint = await registryFingerprint(run.pool);
  for (const row of rows.filter((r) => r.name.startsWith('database:'))) {
    const target = databaseTemplate(run, row);
    const versions = between(run, row.version, to);
    if (versions.length === 0) continue;
    let ok = false;
    try {
      ok = await run.ctx.templates.open(target.server ?? 'main', (client) =>
        migrate(run, target, client, versions),
      );
    } catch (error) {
      await forget(run, row);
      if (!(error instanceof pg.DatabaseError && error.code === '3D000')) {
        const { message } = describeError(error);
        run.failures.push({ target: target.label, version: versions[0]?.version ?? to, error: message });
      }
    }
    if (ok) await saveTemplate(run.pool, { ...row, version: to, fingerprint });
  }
  run.progress({ phase: 'templates', done: rows.length, failed: 0, total: rows.length });
}
