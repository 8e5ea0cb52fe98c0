import pg from 'pg';
import { TenantryError } from '../../errors.js';
import { normalizeSql } from '../../session/sql-guard.js';
import type { ColumnSpec, IndexRecord, SequenceRecord, SerialRecord, ViewRecord } from './format.js';
import {
  dataRelation,
  type Queryable,
  type TableShape,
  type TenantPlacement,
  type TransferTable,
} from './placement.js';

/** The tenant's per-tenant columns (`tenantry.add_tenant_column`), by table key. */
export async function readExtraColumns(db: Queryable, tenantId: number): Promise<Map<string, ColumnSpec[]>> {
  const { rows } = await db.query<{ key: string; name: string; type: string }>(
    `SELECT schema_name || '.' || table_name AS key, column_name AS name, type
     FROM tenantry.tenant_column WHERE tenant_id = $1 ORDER BY 1, 2`,
    [tenantId],
  );
  const byTable = new Map<string, ColumnSpec[]>();
  for (const r of rows) byTable.set(r.key, [...(byTable.get(r.key) ?? []), { name: r.name, type: r.type }]);
  return byTable;
}

/** A column name as an index definition shows it: `"Weird"` → `Weird`. */
function unquote(identifier: string): string {
  return identifier.startsWith('"') ? identifier.slice(1, -1).replace(/""/g, '"') : identifier;
}

/**
 * The tenant indexes (`tenantry.create_tenant_index`) on `placement`'s data table, as the
 * columns they were created with. Indexes on another tenant's extra columns are left out; on a
 * shared table, plain-column tenant indexes (which every tenant of the table shares) are kept.
 */
export async function readIndexes(
  db: Queryable,
  placement: TenantPlacement,
  table: TransferTable,
  key: string,
): Promise<IndexRecord[]> {
  const { rows } = await db.query<{ keys: string[] }>(
    `SELECT ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(2, i.indnkeyatts) k) AS keys
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = to_regclass($1) AND c.relname LIKE 'tenantry\\_ix\\_%' ORDER BY c.relname`,
    [dataRelation(placement, table)],
  );
  const found: IndexRecord[] = [];
  for (const { keys } of rows) {
    const columns: string[] = [];
    let mine = true;
    for (const k of keys) {
      const ext = /tenantry_ext ->> '((?:[^']|'')+)'/.exec(k);
      if (ext?.[1] !== undefined) {
        const id = /=\s*\(?(-?\d+)\)?/.exec(k)?.[1];
        if (Number(id) !== placement.id) mine = false;
        columns.push(ext[1].replace(/''/g, "'"));
      } else columns.push(unquote(k.trim()));
    }
    if (mine && columns.length > 0) found.push({ type: 'index', table: key, columns });
  }
  return found;
}

/**
 * The tenant's own views in its face schema (the schema first on its search_path), in creation
 * order, with definitions as its session would name things. `managed` lists names tenantry
 * itself keeps there (a table's tenant-facing view or per-tenant-column view), left out. Call in
 * a transaction: the search_path is set transaction-locally.
 */
export async function readViews(
  db: Queryable,
  face: string,
  managed: readonly string[],
): Promise<ViewRecord[]> {
  await db.query("SELECT set_config('search_path', $1, true)", [
    `${pg.escapeIdentifier(face)}, tenantry_v, pg_catalog`,
  ]);
  const { rows } = await db.query<{ name: string; definition: string; options: string[] | null }>(
    `SELECT c.relname AS name, pg_get_viewdef(c.oid, true) AS definition, c.reloptions AS options
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind = 'v' AND c.relname <> ALL ($2::name[])
     ORDER BY c.oid`,
    [face, managed],
  );
  return rows.map((r) => ({
    type: 'view',
    name: r.name,
    definition: r.definition.trim().replace(/;$/, ''),
    options: (r.options ?? []).filter((o) => !o.startsWith('security_invoker=')),
  }));
}

/** The tenant's values of multi-tenant sequences (`tenantry.next`). */
export async function readSequenceValues(db: Queryable, tenantId: number): Promise<SequenceRecord[]> {
  const { rows } = await db.query<{ name: string; value: string }>(
    `SELECT v.name, v.value::text AS value FROM tenantry.sequence_value v JOIN tenantry.sequence s ON s.name = v.name
     WHERE v.segment = $1 AND s.kind = 'multi_tenant' ORDER BY v.name`,
    [tenantId],
  );
  return rows.map((r) => ({ type: 'sequence', name: r.name, value: r.value }));
}

/** The last values of the serial columns' sequences of a schema or database tenant (its own). */
export async function readSerials(db: Queryable, shape: TableShape, key: string): Promise<SerialRecord[]> {
  const found: SerialRecord[] = [];
  for (const { column, sequence } of shape.serials) {
    const { rows } = await db.query<{ value: string; called: boolean }>(
      `SELECT last_value::text AS value, is_called AS called FROM ${sequence}`,
    );
    if (rows[0]?.called) found.push({ type: 'serial', table: key, column, value: rows[0].value });
  }
  return found;
}

/** Sets the tenant's values of multi-tenant sequences (in the database holding its rows). */
export async function writeSequenceValues(
  db: Queryable,
  tenantId: number,
  values: readonly SequenceRecord[],
): Promise<string[]> {
  if (values.length === 0) return [];
  const { rows } = await db.query<{ name: string }>(
    `SELECT u.name FROM unnest($1::text[]) u(name)
     WHERE NOT EXISTS (SELECT 1 FROM tenantry.sequence s WHERE s.name = u.name AND s.kind = 'multi_tenant')`,
    [values.map((v) => v.name)],
  );
  if (rows.length > 0) return rows.map((r) => r.name);
  await db.query(
    `INSERT INTO tenantry.sequence_value (name, segment, value)
     SELECT n, $1, v::bigint FROM unnest($2::text[], $3::text[]) u(n, v)
     ON CONFLICT (name, segment) DO UPDATE SET value = EXCLUDED.value`,
    [tenantId, values.map((v) => v.name), values.map((v) => v.value)],
  );
  return [];
}

/**
 * `CREATE VIEW` of a view record, in the tenant's face schema. The definition must be one query:
 * a file whose definition carries further statements (`SELECT 1; DELETE …`) is corrupt
 * (`TENANTRY_ERR_TRANSFER_CORRUPT`), never run.
 */
export function createViewSql(face: string, view: ViewRecord): string {
  if (
    normalizeSql(view.definition)
      .replace(/[\s;]+$/, '')
      .includes(';')
  ) {
    throw new TenantryError('TRANSFER_CORRUPT', {
      problem: `the definition of view ${view.name} holds more than one statement`,
    });
  }
  const options = view.options.filter((o) => /^[a-z_]+=[A-Za-z0-9_]+$/.test(o));
  return `CREATE VIEW ${pg.escapeIdentifier(face)}.${pg.escapeIdentifier(view.name)}${
    options.length > 0 ? ` WITH (${options.join(', ')})` : ''
  } AS ${view.definition}`;
}
