import type pg from 'pg';
import type { CatalogCache, CatalogRoles, Tenant, TenantRef } from '../catalog/index.js';
import type { Logger } from '../logger.js';
import type { TenantDb } from '../session/index.js';

/**
 * What the runtime services need from a tenantry instance. The instance builds it; the runtime
 * never reaches into the instance otherwise.
 */
export interface RuntimeHost {
  /** The operator's URL of the catalog database. */
  readonly databaseUrl: string;
  readonly roles: CatalogRoles;
  readonly catalog: CatalogCache;
  readonly logger: Logger;
  /** The operator's pool (catalog database). */
  readonly admin: pg.Pool;
  /** The operator URL of a server (database tenants' databases live on it). */
  serverUrl(server: string): Promise<string>;
  /** Resolves a tenant reference; throws `TENANTRY_ERR_TENANT_NOT_FOUND`. */
  resolveTenant(ref: TenantRef | Tenant): Promise<Tenant>;
  /** Runs `fn` as `tenant` exactly like `tenantry.withTenant` (state checks, context). */
  withTenant<T>(tenant: Tenant, fn: (db: TenantDb) => Promise<T>): Promise<T>;
  /**
   * A tenant handle under the application role that skips the tenant-state check: for the
   * runtime's own bookkeeping (releasing a disabled tenant's job). Row-level security applies.
   */
  bookkeeping(tenant: Tenant): TenantDb;
  /** The handle of the current tenant context (joins its open transaction); `NO_TENANT` outside. */
  currentDb(): TenantDb;
}

/** The tables of one tenant's runtime rows, fully qualified and quoted. */
export interface RuntimeTables {
  readonly job: string;
  readonly event: string;
  readonly eventHead: string;
  readonly idCounter: string;
  /**
   * `catalog`: rows in the catalog database's shared tables (shared tenants); `schema`: in the
   * tenant's data schema; `database`: in the tenant's own database.
   */
  readonly placement: 'catalog' | 'schema' | 'database';
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Where `tenant`'s runtime rows live (see src/sql/include/runtime-tables.sql). */
export function runtimeTables(tenant: Tenant): RuntimeTables {
  const own = tenant.isolation === 'schema' && tenant.schemaName !== null;
  const schema = own ? (tenant.schemaName ?? 'tenantry') : 'tenantry';
  const prefix = own ? 'tenantry_' : '';
  const table = (name: string) => `${quote(schema)}.${quote(prefix + name)}`;
  return {
    job: table('job'),
    event: table('event'),
    eventHead: table('event_head'),
    idCounter: table('id_counter'),
    placement: own
      ? 'schema'
      : tenant.isolation === 'database' && tenant.databaseName
        ? 'database'
        : 'catalog',
  };
}

/** Whether `tenant`'s jobs and events live outside the catalog's shared tables. */
export function hasOwnStorage(tenant: Tenant): boolean {
  return runtimeTables(tenant).placement !== 'catalog';
}

/** A tenant's identity across catalog reloads: id and uuid (a dropped tenant's id never returns). */
export function tenantKey(tenant: Pick<Tenant, 'id' | 'uuid'>): string {
  return `${tenant.id}:${tenant.uuid}`;
}
