import type pg from 'pg';
import {
  TENANT_COLUMNS,
  toRegisteredTable,
  toTenant,
  type RegisteredTableRow,
  type TenantRow,
} from './rows.js';
import { inTransaction } from './transaction.js';
import type { RegisteredTable, Tenant } from './types.js';

/** What one read of the catalog found. */
export interface CatalogRead {
  /**
   * The xmin of the read's snapshot (an xid8, as text): every change the read did not see was
   * made by a transaction at least this old (catalog version 28: `tenant.changed_xid`).
   */
  readonly horizon: string;
  /** Every tenant (`full`), or only those changed since the previous horizon. */
  readonly full: boolean;
  readonly tenants: readonly Tenant[];
  /** Ids of tenants removed since the previous horizon (incremental reads only). */
  readonly removed: readonly number[];
  readonly tables: readonly RegisteredTable[];
}

const XID8 = /^\d{1,20}$/;

/**
 * Reads the catalog in one snapshot (REPEATABLE READ): every tenant when `since` is undefined,
 * else only tenants whose row changed in a transaction at least as old as `since` and the ids of
 * tenants removed since then. A truncated tenant table (a tombstone without an id) makes it read
 * everything. Registered tables are always read whole (there are few).
 */
export function readCatalog(pool: pg.Pool, since: string | undefined): Promise<CatalogRead> {
  return inTransaction(
    pool,
    async (client) => {
      // the first statement fixes the transaction's snapshot, so the horizon is the reads' own
      const { rows: snapshot } = await client.query<{ horizon: string }>(
        'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon',
      );
      let full = since === undefined || !XID8.test(since);
      let removed: number[] = [];
      if (!full) {
        const { rows } = await client.query<{ id: number | null }>(
          'SELECT id FROM tenantry.tenant_removed WHERE removed_xid >= $1::xid8',
          [since],
        );
        if (rows.some((row) => row.id === null)) full = true;
        else removed = rows.map((row) => row.id as number);
      }
      const { rows: tenants } = full
        ? await client.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenantry.tenant`)
        : await client.query<TenantRow>(
            `SELECT ${TENANT_COLUMNS} FROM tenantry.tenant WHERE changed_xid >= $1::xid8`,
            [since],
          );
      const { rows: tables } = await client.query<RegisteredTableRow>(
        'SELECT schema_name, table_name, kind, tenant_column, writable FROM tenantry.registered_table ORDER BY 1, 2',
      );
      return {
        horizon: snapshot[0]?.horizon ?? '',
        full,
        tenants: tenants.map(toTenant),
        removed: full ? [] : removed,
        tables: tables.map(toRegisteredTable),
      };
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}
