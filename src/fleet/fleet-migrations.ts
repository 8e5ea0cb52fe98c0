import type { TenantRef } from '../catalog/index.js';
import { appliedMigrations, fleetTenants, templateRows } from './fleet-store.js';
import type { AppliedMigration, FleetTenant, TemplateRow } from './fleet-store.js';
import { loadMigrationDir, type LoadedMigration, type Migration } from './migration-source.js';
import { pendingMigrations } from './plan.js';
import type { FleetContext } from './run-context.js';
import { gatherMigrations, runMigrations, type MigrateOptions, type MigrationReport } from './runner.js';

/** Where the fleet stands (`tenantry migrate status`). */
export interface MigrationStatus {
  /** The shared tables' version: the fleet's current version. */
  readonly current: number;
  /** Migrations applied to the shared tables. */
  readonly applied: readonly AppliedMigration[];
  /** Versions among the migrations given that are not applied yet. */
  readonly pending: readonly number[];
  /** The version a run would bring everyone to. */
  readonly latest: number;
  /** The templates new tenants are cloned from, with their versions. */
  readonly templates: readonly TemplateRow[];
  /** Every schema and database tenant with its version and last failure. */
  readonly tenants: readonly FleetTenant[];
  /** Shared tenants: they use the shared tables, so they are always at `current`. */
  readonly sharedTenants: number;
}

/**
 * The application's migrations across the fleet (`tenantry.migrations`): the shared tables
 * once, then every schema and database tenant, resumable per tenant. See docs/fleet.md.
 */
export class FleetMigrations {
  readonly #ctx: FleetContext;

  constructor(ctx: FleetContext) {
    this.#ctx = ctx;
  }

  /**
   * Applies the pending migrations (see {@link MigrateOptions}). One tenant's failure does not
   * stop the others: failures are listed in the report and recorded per tenant, and a rerun
   * picks up exactly what is behind. Throws `TENANTRY_ERR_MIGRATION_LOCKED` while another run
   * holds the lock and `TENANTRY_ERR_MIGRATION_MISMATCH` when the migrations given disagree
   * with those applied.
   */
  run(options: MigrateOptions): Promise<MigrationReport> {
    return runMigrations(this.#ctx, options);
  }

  /** Reads and checks a directory of migrations (`<version>_<name>.sql|.js|.mjs`). */
  load(dir: string): Promise<LoadedMigration[]> {
    return loadMigrationDir(dir);
  }

  /** Versions of the shared tables, the templates and every schema and database tenant. */
  async status(
    options: { dir?: string; migrations?: readonly Migration[]; tenant?: TenantRef } = {},
  ): Promise<MigrationStatus> {
    const db = this.#ctx.admin;
    const given =
      options.dir === undefined && options.migrations === undefined ? [] : await gatherMigrations(options);
    const applied = await appliedMigrations(db);
    const current = applied.reduce((max, a) => Math.max(max, a.version), 0);
    const pending = given.length > 0 ? pendingMigrations(given, applied).map((m) => m.version) : [];
    const only =
      options.tenant === undefined ? undefined : (await this.#ctx.resolveTenant(options.tenant)).id;
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tenantry.tenant WHERE isolation = 'shared' AND kind IN ('regular', 'super')",
    );
    return {
      current,
      applied,
      pending,
      latest: Math.max(current, ...pending),
      templates: await templateRows(db),
      tenants: await fleetTenants(db, only),
      sharedTenants: rows[0]?.n ?? 0,
    };
  }
}
