import { TenantryError } from '../errors.js';
import type { AppliedMigration, FleetTenant, TemplateRow } from './fleet-store.js';
import type { LoadedMigration } from './migration-source.js';

/** What a run would do on one target (a dry run lists them). */
export interface PlannedTarget {
  /** `shared`, `template schema`, `tenant Acme (schema)` … */
  readonly target: string;
  /** The version it is at. */
  readonly from: number;
  /** The versions it would get, in order. */
  readonly versions: readonly number[];
}

/**
 * Checks the migrations against those the catalog applied and answers the pending ones. Throws
 * `TENANTRY_ERR_MIGRATION_MISMATCH` when an applied migration is missing or was edited, or a
 * new one is numbered below the latest applied.
 */
export function pendingMigrations(
  migrations: readonly LoadedMigration[],
  applied: readonly AppliedMigration[],
): LoadedMigration[] {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  const latest = applied.reduce((max, a) => Math.max(max, a.version), 0);
  for (const a of applied) {
    const m = byVersion.get(a.version);
    if (!m) {
      throw new TenantryError('MIGRATION_MISMATCH', {
        problem: `migration ${a.version} (${a.name}) was applied but is not among the migrations given; restore its file`,
      });
    }
    if (m.checksum !== a.checksum) {
      throw new TenantryError('MIGRATION_MISMATCH', {
        problem: `migration ${a.version} (${a.name}) was changed after it was applied (checksum ${m.checksum}, applied ${a.checksum}); undo the edit and add a new migration instead`,
      });
    }
  }
  const done = new Set(applied.map((a) => a.version));
  const late = migrations.find((m) => !done.has(m.version) && m.version < latest);
  if (late) {
    throw new TenantryError('MIGRATION_MISMATCH', {
      problem: `migration ${late.version} (${late.name}) is numbered below ${latest}, which is already applied; give it a version above ${latest}`,
    });
  }
  return migrations.filter((m) => m.version > latest);
}

const versionsBetween = (migrations: readonly LoadedMigration[], from: number, to: number) =>
  migrations.filter((m) => m.version > from && m.version <= to).map((m) => m.version);

/** The dry-run plan: the shared tables, then each template and tenant that is behind `to`. */
export function planRun(
  migrations: readonly LoadedMigration[],
  current: number,
  to: number,
  templates: readonly TemplateRow[],
  tenants: readonly FleetTenant[],
): PlannedTarget[] {
  const plan: PlannedTarget[] = [
    { target: 'shared', from: current, versions: versionsBetween(migrations, current, to) },
  ];
  for (const t of templates) {
    const label = t.name === 'schema' ? 'template schema' : `template database on ${t.server ?? 'main'}`;
    plan.push({ target: label, from: t.version, versions: versionsBetween(migrations, t.version, to) });
  }
  for (const t of tenants) {
    const versions = versionsBetween(migrations, t.version, to);
    if (versions.length > 0)
      plan.push({ target: `tenant ${t.name} (${t.isolation})`, from: t.version, versions });
  }
  return plan;
}
