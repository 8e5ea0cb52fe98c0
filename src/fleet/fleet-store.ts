import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { TenantIsolation, TenantState } from '../catalog/index.js';

/** The SQL a template database holds besides its tables (`tenantry.fleet_adopt`, the version table). */
export const FLEET_PLANE_SQL = readFileSync(
  fileURLToPath(new URL('../sql/dataplane/fleet-template.sql', import.meta.url)),
  'utf8',
);

/**
 * The version of {@link FLEET_PLANE_SQL}: a template built by a tenantry with other SQL there is
 * rebuilt on its next use (it is part of {@link registryFingerprint}).
 */
export const FLEET_PLANE_VERSION = createHash('sha256').update(FLEET_PLANE_SQL).digest('hex').slice(0, 12);

/** Something that runs queries: a pool, a client. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** A migration applied to the catalog database (the shared tables). */
export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: Date;
  readonly durationMs: number | null;
}

/** A schema or database tenant with the migration version its tables are at. */
export interface FleetTenant {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly state: TenantState;
  readonly isolation: Exclude<TenantIsolation, 'shared'>;
  readonly server: string;
  readonly schemaName: string | null;
  readonly databaseName: string | null;
  /** Its own (admin) login role. */
  readonly role: string | null;
  readonly version: number;
  /** The version that failed last, with its error, until a later run applies it. */
  readonly failedVersion: number | null;
  readonly error: string | null;
  readonly updatedAt: Date | null;
}

/** A template new tenants are cloned from. */
export interface TemplateRow {
  /** `schema`, or `database:<server>`. */
  readonly name: string;
  readonly server: string | null;
  /** The template's schema or database. */
  readonly objectName: string;
  readonly version: number;
  readonly fingerprint: string | null;
}

/** Every migration applied to the shared tables, by version. */
export async function appliedMigrations(db: Queryable): Promise<AppliedMigration[]> {
  const { rows } = await db.query<{
    version: string;
    name: string;
    checksum: string;
    applied_at: Date;
    duration_ms: number | null;
  }>('SELECT version, name, checksum, applied_at, duration_ms FROM tenantry.app_migration ORDER BY version');
  return rows.map((r) => ({
    version: Number(r.version),
    name: r.name,
    checksum: r.checksum,
    appliedAt: r.applied_at,
    durationMs: r.duration_ms,
  }));
}

/** Schema and database tenants with their versions, by id; `only` limits them to one tenant. */
export async function fleetTenants(db: Queryable, only?: number): Promise<FleetTenant[]> {
  const { rows } = await db.query<{
    id: number;
    uuid: string;
    name: string;
    state: TenantState;
    isolation: 'schema' | 'database';
    server: string;
    schema_name: string | null;
    database_name: string | null;
    role: string | null;
    version: string | null;
    failed_version: string | null;
    error: string | null;
    updated_at: Date | null;
  }>(
    `SELECT t.id, t.uuid, t.name, t.state, t.isolation, t.server, t.schema_name, t.database_name,
            (SELECT r.role_name FROM tenantry.tenant_role r WHERE r.tenant_id = t.id AND r.permission = 'admin') AS role,
            m.version, m.failed_version, m.error, m.updated_at
     FROM tenantry.tenant t LEFT JOIN tenantry.tenant_migration m ON m.tenant_id = t.id
     WHERE t.isolation IN ('schema', 'database') AND ($1::int IS NULL OR t.id = $1)
       AND (t.schema_name IS NOT NULL OR t.database_name IS NOT NULL)
     ORDER BY t.id`,
    [only ?? null],
  );
  return rows.map((r) => ({
    id: r.id,
    uuid: r.uuid,
    name: r.name,
    state: r.state,
    isolation: r.isolation,
    server: r.server,
    schemaName: r.schema_name,
    databaseName: r.database_name,
    role: r.role,
    version: Number(r.version ?? 0),
    failedVersion: r.failed_version === null ? null : Number(r.failed_version),
    error: r.error,
    updatedAt: r.updated_at,
  }));
}

/** Records that `tenantId` is at `version` (and clears its last failure). */
export async function recordTenantVersion(db: Queryable, tenantId: number, version: number): Promise<void> {
  await db.query(
    `INSERT INTO tenantry.tenant_migration (tenant_id, version) VALUES ($1, $2)
     ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, failed_version = NULL, error = NULL, updated_at = now()`,
    [tenantId, version],
  );
}

/** Records that migration `version` failed on `tenantId` with `error` (its version is unchanged). */
export async function recordTenantFailure(
  db: Queryable,
  tenantId: number,
  version: number,
  error: string,
): Promise<void> {
  await db.query(
    `INSERT INTO tenantry.tenant_migration (tenant_id, version, failed_version, error) VALUES ($1, 0, $2, $3)
     ON CONFLICT (tenant_id) DO UPDATE SET failed_version = EXCLUDED.failed_version, error = EXCLUDED.error, updated_at = now()`,
    [tenantId, version, error],
  );
}

/** The templates recorded in the catalog. */
export async function templateRows(db: Queryable): Promise<TemplateRow[]> {
  const { rows } = await db.query<{
    name: string;
    server: string | null;
    object_name: string;
    version: string;
    fingerprint: string | null;
  }>('SELECT name, server, object_name, version, fingerprint FROM tenantry.migration_template ORDER BY name');
  return rows.map((r) => ({
    name: r.name,
    server: r.server,
    objectName: r.object_name,
    version: Number(r.version),
    fingerprint: r.fingerprint,
  }));
}

/** Creates or updates a template's row. */
export async function saveTemplate(
  db: Queryable,
  row: {
    name: string;
    server: string | null;
    objectName: string;
    version: number;
    fingerprint: string | null;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO tenantry.migration_template (name, server, object_name, version, fingerprint) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO UPDATE SET server = EXCLUDED.server, object_name = EXCLUDED.object_name,
       version = EXCLUDED.version, fingerprint = EXCLUDED.fingerprint, updated_at = now()`,
    [row.name, row.server, row.objectName, row.version, row.fingerprint],
  );
}

/**
 * A fingerprint of what a template copies: the registry (tables, sequences) and the column shape
 * of every registered table, and {@link FLEET_PLANE_VERSION}. A template built or migrated under
 * another fingerprint is stale.
 */
export async function registryFingerprint(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ fp: string }>(
    `SELECT md5(coalesce((SELECT string_agg(format('%s.%s:%s:%s:%s:%s', r.schema_name, r.table_name, r.kind,
                                              r.tenant_column, r.writable, tenantry.column_shape(c.oid)),
                                       ';' ORDER BY r.schema_name, r.table_name)
                          FROM tenantry.registered_table r
                          LEFT JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', r.schema_name, r.table_name))), '')
               || '|' || coalesce((SELECT string_agg(format('%s:%s:%s:%s', s.name, s.kind, s.start, s.increment), ';' ORDER BY s.name)
                                   FROM tenantry.sequence s), '')) AS fp`,
  );
  return `${rows[0]?.fp ?? ''}:${FLEET_PLANE_VERSION}`;
}
