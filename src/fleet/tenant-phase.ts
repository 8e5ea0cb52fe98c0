import pg from 'pg';
import { withDatabase } from '../connection-url.js';
import { applyStep, describeError } from './apply.js';
import { recordTenantFailure, recordTenantVersion, type FleetTenant } from './fleet-store.js';
import type { LoadedMigration } from './migration-source.js';
import { stepPlan, type Run } from './run-context.js';
import type { Target } from './target.js';

/** What the tenant phase did. */
export interface TenantPhaseResult {
  readonly migrated: number;
  readonly failed: number;
  /** Not started because the run was interrupted. */
  readonly pending: number;
}

function tenantTarget(tenant: FleetTenant): Target {
  const label = `tenant ${tenant.name} (${tenant.isolation})`;
  return tenant.isolation === 'schema'
    ? { kind: 'schema', label, tenant, schema: tenant.schemaName ?? '' }
    : {
        kind: 'database',
        label,
        tenant,
        server: tenant.server,
        database: tenant.databaseName ?? '',
        role: tenant.role ?? '',
      };
}

/**
 * Applies `versions` (those above the tenant's version) to one target on `client`, one
 * transaction each, stopping at the first failure, which is recorded. Answers the version
 * reached, or the failure.
 */
async function migrateOne(
  run: Run,
  target: Target,
  client: pg.ClientBase,
  versions: readonly LoadedMigration[],
  mirror: (version: number) => Promise<void>,
): Promise<{ version?: number; error?: string }> {
  let reached: number | undefined;
  for (const migration of versions) {
    try {
      await applyStep(stepPlan(run, target, client, migration));
      reached = migration.version;
      await mirror(reached);
    } catch (error) {
      const { message, sqlstate } = describeError(error);
      run.failures.push({
        target: target.label,
        ...(target.tenant ? { tenant: target.tenant.name } : {}),
        version: migration.version,
        error: message,
        ...(sqlstate === undefined ? {} : { sqlstate }),
      });
      if (target.tenant) await recordTenantFailure(run.pool, target.tenant.id, migration.version, message);
      return { error: message };
    }
  }
  return reached === undefined ? {} : { version: reached };
}

/** A database tenant: its own version record (created when missing) is the one that counts. */
async function migrateDatabase(run: Run, tenant: FleetTenant, to: number) {
  const target = tenantTarget(tenant);
  const url = withDatabase(await run.ctx.serverUrl(tenant.server), tenant.databaseName ?? '');
  const client = new pg.Client({ connectionString: url, application_name: 'tenantry-migrate' });
  client.on('error', () => undefined); // (a query in flight fails by itself)
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE IF NOT EXISTS tenantry.fleet_version (
         only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), version bigint NOT NULL);
       REVOKE ALL ON tenantry.fleet_version FROM PUBLIC`,
    );
    await client.query(
      'INSERT INTO tenantry.fleet_version (version) VALUES ($1) ON CONFLICT (only_row) DO NOTHING',
      [tenant.version],
    );
    const { rows } = await client.query<{ version: string }>('SELECT version FROM tenantry.fleet_version');
    const from = Number(rows[0]?.version ?? tenant.version);
    if (from !== tenant.version) await recordTenantVersion(run.pool, tenant.id, from);
    const versions = run.migrations.filter((m) => m.version > from && m.version <= to);
    return await migrateOne(run, target, client, versions, (v) =>
      recordTenantVersion(run.pool, tenant.id, v),
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function migrateSchema(run: Run, tenant: FleetTenant, to: number) {
  const client = await run.pool.connect();
  try {
    const versions = run.migrations.filter((m) => m.version > tenant.version && m.version <= to);
    return await migrateOne(run, tenantTarget(tenant), client, versions, () => Promise.resolve());
  } finally {
    client.release();
  }
}

/**
 * Brings every tenant of `tenants` up to version `to`, `concurrency` at a time, each in its own
 * transactions: one tenant's failure is recorded and reported, the others go on. Once `signal`
 * aborts, no further tenant starts (those running finish); they count as pending.
 */
export async function migrateTenants(
  run: Run,
  tenants: readonly FleetTenant[],
  to: number,
  concurrency: number,
): Promise<TenantPhaseResult> {
  let next = 0;
  let migrated = 0;
  let failed = 0;
  let done = 0;
  const total = tenants.length;
  run.progress({ phase: 'tenants', done, failed, total });
  const worker = async () => {
    while (next < tenants.length && !run.signal?.aborted) {
      const tenant = tenants[next++]!;
      let result: { version?: number; error?: string };
      try {
        result =
          tenant.isolation === 'schema'
            ? await migrateSchema(run, tenant, to)
            : await migrateDatabase(run, tenant, to);
      } catch (error) {
        // (could not even connect: the tenant's database or server is unreachable)
        const { message } = describeError(error);
        run.failures.push({
          target: tenantTarget(tenant).label,
          tenant: tenant.name,
          version: to,
          error: message,
        });
        await recordTenantFailure(run.pool, tenant.id, to, message).catch(() => undefined);
        result = { error: message };
      }
      done++;
      if (result.error === undefined) migrated++;
      else failed++;
      run.progress({
        phase: 'tenants',
        done,
        failed,
        total,
        target: tenantTarget(tenant).label,
        ...(result.error === undefined ? {} : { error: result.error }),
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, total)) }, worker));
  return { migrated, failed, pending: total - done };
}
