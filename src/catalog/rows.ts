import type { RegisteredTable, Tenant, TenantIsolation, TenantKind, TenantState } from './types.js';

/** Columns selected for a tenant, in the shape {@link toTenant} reads. */
export const TENANT_COLUMNS = `id, uuid, name, kind, state, isolation, server, schema_name, database_name,
  (SELECT r.role_name FROM tenantry.tenant_role r WHERE r.tenant_id = tenant.id AND r.permission = 'admin') AS role_name,
  created_at, updated_at, tablespace, placement_epoch, statement_timeout_ms`;

/** A tenant row as node-postgres returns it. */
export interface TenantRow {
  id: number;
  uuid: string;
  name: string;
  kind: TenantKind;
  state: TenantState;
  isolation: TenantIsolation;
  server: string;
  schema_name: string | null;
  database_name: string | null;
  role_name: string | null;
  tablespace: string | null;
  placement_epoch: number;
  statement_timeout_ms: number | null;
  created_at: Date;
  updated_at: Date;
}

/** Maps a catalog row to a frozen {@link Tenant}. */
export function toTenant(row: TenantRow): Tenant {
  return Object.freeze({
    id: row.id,
    uuid: row.uuid,
    name: row.name,
    kind: row.kind,
    state: row.state,
    isolation: row.isolation,
    server: row.server,
    schemaName: row.schema_name,
    databaseName: row.database_name,
    role: row.role_name,
    tablespace: row.tablespace ?? null,
    placementEpoch: row.placement_epoch ?? 0,
    statementTimeoutMs: row.statement_timeout_ms ?? null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

/** A registered-table row as node-postgres returns it. */
export interface RegisteredTableRow {
  schema_name: string;
  table_name: string;
  kind: 'multi_tenant' | 'shared';
  tenant_column: string | null;
  writable: boolean;
}

/** Maps a registry row to a frozen {@link RegisteredTable}. */
export function toRegisteredTable(row: RegisteredTableRow): RegisteredTable {
  return Object.freeze({
    schema: row.schema_name,
    table: row.table_name,
    kind: row.kind,
    tenantColumn: row.tenant_column,
    writable: row.writable,
  });
}
