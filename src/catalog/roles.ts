import { createHash } from 'node:crypto';

/**
 * The PostgreSQL roles one tenantry installation uses. Roles are cluster-wide while a catalog
 * lives in one database, so their names carry a prefix derived from the database name.
 */
export interface CatalogRoles {
  /** Owns schema `tenantry` and its objects; never used for tenant work. */
  readonly owner: string;
  /** Tenant work (trusted library use): LOGIN, not superuser, not BYPASSRLS, owns nothing. */
  readonly app: string;
  /** Maintenance identity (drop, export, move…): BYPASSRLS, never reachable from a tenant path. */
  readonly maint: string;
  /** Group of shared tenants' login roles: DML on the base multi-tenant tables (under RLS). */
  readonly tenants: string;
  /** Group of every tenant login role: tenantry's functions and the global (shared) tables. */
  readonly global: string;
  /** Login role database tenants read the global tables through (postgres_fdw): shared tables only. */
  readonly fdw: string;
}

/** Derives the role names for a catalog in `database` (≤ 63 bytes, lower-case, stable). */
export function rolesFor(database: string): CatalogRoles {
  let stem = database.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (stem.length > 40) {
    stem = `${stem.slice(0, 30)}_${createHash('sha256').update(database).digest('hex').slice(0, 8)}`;
  }
  // (every name below stays within PostgreSQL's 63 bytes)
  const prefix = `tenantry_${stem}`;
  return {
    owner: `${prefix}_owner`,
    app: `${prefix}_app`,
    maint: `${prefix}_maint`,
    tenants: `${prefix}_tenants`,
    global: `${prefix}_global`,
    fdw: `${prefix}_fdw`,
  };
}

/**
 * The login role, schema and database name of one tenant: derived from its uuid, so names
 * visible in the system catalogs reveal neither the tenant's name nor its id.
 */
export function tenantObjectName(uuid: string): string {
  return `tenantry_t_${uuid.replace(/-/g, '').toLowerCase()}`;
}

/**
 * The schema a tenant's sessions see first: its tenant-facing views (schema tenants) and the
 * objects it creates itself. Derived from its uuid, like {@link tenantObjectName}.
 */
export function tenantFaceSchema(uuid: string): string {
  return `tenantry_f_${uuid.replace(/-/g, '').toLowerCase()}`;
}

/**
 * The search_path of a tenant session: its face schema, then the tenant-facing views, then
 * `pg_temp` — last, so a temporary table can never shadow a tenant-facing view (by default
 * PostgreSQL searches pg_temp first).
 */
export function tenantSearchPath(uuid: string): string {
  return `${tenantFaceSchema(uuid)}, tenantry_v, pg_temp`;
}
