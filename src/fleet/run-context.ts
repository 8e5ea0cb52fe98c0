import pg from 'pg';
import type { CatalogRoles, RegisteredTable, Tenant, TenantRef } from '../catalog/index.js';
import type { DatabasePlan } from '../isolation/database.js';
import type { StepPlan } from './apply.js';
import type { DatabaseTemplates } from './database-template.js';
import { readRegistryPlan, type RegistryPlan } from './database-sync.js';
import { recordTenantVersion } from './fleet-store.js';
import type { LoadedMigration } from './migration-source.js';
import type { Snapshot, Target } from './target.js';

/** What the fleet operations need from a tenantry instance. */
export interface FleetContext {
  /** The operator's pool on the catalog database. */
  readonly admin: pg.Pool;
  /** The operator's URL of the catalog database. */
  readonly url: string;
  readonly roles: CatalogRoles;
  /** The operator's URL of a registered server. */
  readonly serverUrl: (server: string) => Promise<string>;
  readonly templates: DatabaseTemplates;
  /** How tenant databases reach the global tables (postgres_fdw). */
  readonly fdw: DatabasePlan['fdw'];
  readonly resolveTenant: (ref: TenantRef) => Promise<Tenant>;
  /** Re-reads the catalog cache (a migration may have registered tables). */
  readonly reload: () => Promise<void>;
}

/** Where a target failed, and why. */
export interface TargetFailure {
  /** `shared`, `template schema`, `template database on main`, `tenant Acme (schema)`. */
  readonly target: string;
  /** The tenant's name, for tenant targets. */
  readonly tenant?: string;
  readonly version: number;
  /** The error, with its SQLSTATE when PostgreSQL raised it. */
  readonly error: string;
  readonly sqlstate?: string;
}

/** Progress of a migration run, reported after each target (and each shared version). */
export interface MigrationProgress {
  readonly phase: 'shared' | 'templates' | 'tenants';
  readonly done: number;
  readonly failed: number;
  readonly total: number;
  /** The target just finished. */
  readonly target?: string;
  /** Its failure, when it failed. */
  readonly error?: string;
}

/** One migration run's shared state. */
export interface Run {
  readonly ctx: FleetContext;
  readonly migrations: readonly LoadedMigration[];
  /** The run's own connections to the catalog database (at most the concurrency + 1). */
  readonly pool: pg.Pool;
  /** The operator's search_path; a schema target's schema goes before it. */
  readonly basePath: string;
  readonly lockTimeoutMs: number;
  readonly failures: TargetFailure[];
  readonly progress: (event: MigrationProgress) => void;
  readonly signal?: AbortSignal;
  /** The catalog's registry and snapshot after the shared phase (database targets compare). */
  catalog?: { registry: readonly RegisteredTable[]; snapshot: Snapshot };
  /** The registry's definitions, read once when a database target needs them. */
  planned?: Promise<RegistryPlan>;
}

const q = pg.escapeIdentifier;

/** The registry's definitions (memoised per run). */
export function registryPlan(run: Run): Promise<RegistryPlan> {
  run.planned ??= readRegistryPlan(run.ctx.admin, run.ctx.fdw);
  return run.planned;
}

async function versionAtLeast(client: pg.ClientBase, sql: string, values: unknown[], version: number) {
  const { rows } = await client.query<{ version: string | null }>(sql, values);
  return Number(rows[0]?.version ?? 0) >= version;
}

/** The step plan of `migration` on `target`, whose database `client` is connected to. */
export function stepPlan(
  run: Run,
  target: Target,
  client: pg.ClientBase,
  migration: LoadedMigration,
): StepPlan {
  const v = migration.version;
  const base = {
    client,
    target,
    migration,
    lockTimeoutMs: run.lockTimeoutMs,
    reshape: {
      roles: run.ctx.roles,
      plan: () => registryPlan(run),
      ...(run.catalog ? { catalog: run.catalog.snapshot } : {}),
    },
  };
  const fleetVersion = {
    scope: 'tenant' as const,
    searchPath: run.basePath,
    ...(run.catalog ? { registry: run.catalog.registry } : {}),
    isApplied: (c: pg.ClientBase) =>
      versionAtLeast(c, 'SELECT version FROM tenantry.fleet_version FOR UPDATE', [], v),
    record: async (c: pg.ClientBase) => {
      await c.query('UPDATE tenantry.fleet_version SET version = $1', [v]);
    },
  };
  switch (target.kind) {
    case 'shared': {
      const started = Date.now();
      return {
        ...base,
        scope: 'shared',
        searchPath: run.basePath,
        isApplied: (c) =>
          versionAtLeast(c, 'SELECT version FROM tenantry.app_migration WHERE version = $1', [v], v),
        record: async (c) => {
          await c.query(
            'INSERT INTO tenantry.app_migration (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)',
            [v, migration.name, migration.checksum, Date.now() - started],
          );
        },
      };
    }
    case 'schema-template':
      return {
        ...base,
        scope: 'tenant',
        searchPath: `${q(target.schema ?? '')}, ${run.basePath}`,
        isApplied: (c) =>
          versionAtLeast(
            c,
            "SELECT version FROM tenantry.migration_template WHERE name = 'schema' FOR UPDATE",
            [],
            v,
          ),
        record: async (c) => {
          await c.query(
            "UPDATE tenantry.migration_template SET version = $1, updated_at = now() WHERE name = 'schema'",
            [v],
          );
        },
      };
    case 'schema': {
      const id = target.tenant?.id ?? 0;
      return {
        ...base,
        scope: 'tenant',
        searchPath: `${q(target.schema ?? '')}, ${run.basePath}`,
        isApplied: (c) =>
          versionAtLeast(
            c,
            'SELECT version FROM tenantry.tenant_migration WHERE tenant_id = $1 FOR UPDATE',
            [id],
            v,
          ),
        record: (c) => recordTenantVersion(c, id, v),
      };
    }
    case 'database':
    case 'database-template':
      return { ...base, ...fleetVersion };
  }
}
