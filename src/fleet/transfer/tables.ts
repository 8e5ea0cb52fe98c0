import { TenantryError } from '../../errors.js';
import { tableKey, type Queryable, type TransferTable } from './placement.js';

/**
 * The registered multi-tenant tables, read on the catalog database, parents before the tables
 * whose foreign keys reference them (so rows can be inserted in this order).
 */
export async function readTransferTables(catalog: Queryable): Promise<TransferTable[]> {
  const { rows } = await catalog.query<{ schema: string; table: string; column: string }>(
    `SELECT schema_name AS schema, table_name AS table, tenant_column AS column
     FROM tenantry.registered_table WHERE kind = 'multi_tenant' ORDER BY 1, 2`,
  );
  const tables = rows.map((r) => ({ schema: r.schema, table: r.table, tenantColumn: r.column }));
  const { rows: edges } = await catalog.query<{ child: string; parent: string }>(
    `SELECT cn.nspname || '.' || c.relname AS child, pn.nspname || '.' || p.relname AS parent
     FROM pg_constraint f
     JOIN pg_class c ON c.oid = f.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
     JOIN pg_class p ON p.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
     WHERE f.contype = 'f' AND f.conrelid <> f.confrelid`,
  );
  const keys = new Set(tables.map(tableKey));
  const parents = new Map<string, Set<string>>();
  for (const e of edges) {
    if (keys.has(e.child) && keys.has(e.parent))
      parents.set(e.child, (parents.get(e.child) ?? new Set()).add(e.parent));
  }
  const ordered: TransferTable[] = [];
  const placed = new Set<string>();
  let pending = tables;
  while (pending.length > 0) {
    const ready = pending.filter((t) => [...(parents.get(tableKey(t)) ?? [])].every((p) => placed.has(p)));
    // a cycle of foreign keys: keep the rest in name order
    const next = ready.length > 0 ? ready : pending;
    for (const t of next) {
      ordered.push(t);
      placed.add(tableKey(t));
    }
    pending = pending.filter((t) => !placed.has(tableKey(t)));
  }
  return ordered;
}

/**
 * The group segments a tenant's rows of each table live in, for tables where it belongs to a
 * group (seed 004's LowesItm): read as its own when it is the group's only member and has no
 * rows of its own there. Throws `TENANTRY_ERR_TRANSFER_GROUPED` otherwise, naming the group.
 */
export async function soleGroupSegments(
  catalog: Queryable,
  tenant: { id: number; name: string },
): Promise<Map<string, number>> {
  const { rows } = await catalog.query<{ key: string; id: number; group: string; members: string[] }>(
    `SELECT m.schema_name || '.' || m.table_name AS key, g.id, g.name AS group,
            ARRAY(SELECT t.name FROM tenantry.group_member o JOIN tenantry.tenant t ON t.id = o.tenant_id
                  WHERE o.group_id = m.group_id ORDER BY t.name)::text[] AS members
     FROM tenantry.group_member m JOIN tenantry.tenant g ON g.id = m.group_id
     WHERE m.tenant_id = $1 ORDER BY 1`,
    [tenant.id],
  );
  const segments = new Map<string, number>();
  for (const r of rows) {
    if (r.members.length > 1) {
      throw new TenantryError('TRANSFER_GROUPED', {
        tenant: tenant.name,
        table: r.key,
        group: r.group,
        problem: `it shares them with ${r.members.filter((m) => m.toLowerCase() !== tenant.name.toLowerCase()).join(', ')}`,
      });
    }
    segments.set(r.key, r.id);
  }
  return segments;
}
