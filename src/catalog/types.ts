/**
 * A tenant's kind: the default tenant (id 0), regular tenants (id > 0), super tenants (id < 0);
 * `group` marks a tenant group's data segment (never a tenant one acts as).
 */
export type TenantKind = 'default' | 'regular' | 'super' | 'group';

/** A tenant's state: active, disabled (no access at all) or locked (operator only). */
export type TenantState = 'active' | 'disabled' | 'locked';

/** Where a tenant's rows live: shared tables (RLS), its own schema, or its own database. */
export type TenantIsolation = 'shared' | 'schema' | 'database';

/** A tenant as recorded in the catalog. */
export interface Tenant {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly kind: TenantKind;
  readonly state: TenantState;
  readonly isolation: TenantIsolation;
  /** The server the tenant's data lives on (`main`: the catalog's own). */
  readonly server: string;
  /** Its own schema (`schema` tenants). */
  readonly schemaName: string | null;
  /** Its own database (`database` tenants). */
  readonly databaseName: string | null;
  /** Its own login role, when it has one (always for schema and database tenants). */
  readonly role: string | null;
  /** The tablespace (storage area) of a schema or database tenant; null: the database default. */
  readonly tablespace: string | null;
  /** How many times the tenant was moved between placements (checked by every checkout of the application role). */
  readonly placementEpoch: number;
  /** Operator-set limit of each statement of the tenant, in ms (`null`: the server's default). */
  readonly statementTimeoutMs: number | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A table registered with tenantry. */
export interface RegisteredTable {
  readonly schema: string;
  readonly table: string;
  readonly kind: 'multi_tenant' | 'shared';
  readonly tenantColumn: string | null;
  readonly writable: boolean;
}

/** How callers name a tenant: its integer id, its uuid, or its name (case-insensitive). */
export type TenantRef = number | string;
