import pg from 'pg';
import { TenantryError } from '../../errors.js';
import type { Db } from './capture.js';
import type { Placement } from './placement.js';

/** A table whose rows of the moving tenant are copied, as both copies have it. */
export interface MoveTable {
  /** `schema.table` as registered (or tenantry's own per-tenant table). */
  readonly name: string;
  /** The quoted, qualified name in the old copy's database. */
  readonly source: string;
  /** The quoted, qualified name in the new copy's database. */
  readonly target: string;
  readonly tenantColumn: string;
  /** Primary-key columns (they include the tenant column). */
  readonly key: readonly string[];
  /** Columns both copies have (generated columns left out): what is copied and compared. */
  readonly columns: readonly string[];
  /**
   * Whether other tenants' rows share the old copy's table: a shared tenant's tables, and the
   * catalog's own tables a schema tenant uses (its sequence values). Its capture triggers then
   * fire for this tenant's rows only.
   */
  readonly sharedInSource: boolean;
}

/** Which copy a statement runs on. */
export type Side = 'source' | 'target';

/** A table to consider: the registered multi-tenant tables, then tenantry's own per-tenant tables. */
interface Candidate {
  readonly name: string;
  readonly tenantColumn: string;
  /** Its schema and name in a placement. */
  at(placement: Placement): readonly [string, string];
  /** tenantry's runtime tables exist only once used: absent on both sides is fine. */
  readonly optional: boolean;
}

/** tenantry's per-tenant tables, which live wherever the tenant's rows live. */
function ownTables(): Candidate[] {
  const runtime = ['job', 'event', 'event_head', 'id_counter'].map((table): Candidate => ({
    name: `tenantry.${table}`,
    tenantColumn: 'tenant_id',
    optional: true,
    at: (p) => (p.isolation === 'schema' && p.schema ? [p.schema, `tenantry_${table}`] : ['tenantry', table]),
  }));
  // sequence values of shared and schema tenants both live in the catalog's own table
  const sequences: Candidate = {
    name: 'tenantry.sequence_value',
    tenantColumn: 'segment',
    optional: false,
    at: () => ['tenantry', 'sequence_value'],
  };
  return [sequences, ...runtime];
}

/** Whether other tenants' rows share table `at` of `placement` (see {@link MoveTable.sharedInSource}). */
function sharedIn(placement: Placement, at: readonly [string, string]): boolean {
  return placement.isolation === 'shared' || (placement.isolation === 'schema' && at[0] !== placement.schema);
}

interface Shape {
  readonly oid: number;
  readonly key: string[];
  readonly columns: string[];
}

async function shape(db: Db, [schema, table]: readonly [string, string]): Promise<Shape | undefined> {
  const { rows } = await db.query<{ oid: number | null; key: string[] | null; columns: string[] | null }>(
    `SELECT c.oid::int AS oid,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
            (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') AS columns
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [schema, table],
  );
  const row = rows[0];
  if (!row?.oid) return undefined;
  return { oid: row.oid, key: row.key ?? [], columns: row.columns ?? [] };
}

const quote = ([schema, table]: readonly [string, string]) =>
  `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`;

/** Whether two placements keep their rows in the same database (the catalog's). */
function sameDatabase(a: Placement, b: Placement): boolean {
  return a.isolation !== 'database' && b.isolation !== 'database';
}

/** The registered multi-tenant tables, then tenantry's own per-tenant tables. */
async function candidatesFor(catalog: Db): Promise<Candidate[]> {
  const { rows } = await catalog.query<{ schema: string; table: string; tenant_column: string }>(
    `SELECT schema_name AS schema, table_name AS table, tenant_column FROM tenantry.registered_table
     WHERE kind = 'multi_tenant' ORDER BY schema_name, table_name`,
  );
  return [
    ...rows.map((r): Candidate => ({
      name: `${r.schema}.${r.table}`,
      tenantColumn: r.tenant_column,
      optional: false,
      at: (p) => [p.isolation === 'schema' && p.schema ? p.schema : r.schema, r.table],
    })),
    ...ownTables(),
  ];
}

/**
 * The tables to move from the old copy (`source`, in placement `from`) to the new one (`target`,
 * in `to`): every registered multi-tenant table (from the catalog `catalog`) and tenantry's own
 * per-tenant tables — except those both placements share (a shared and a schema tenant's
 * sequence values both live in the catalog). Answers them with the old copy's oids (the capture
 * log names tables by oid). Throws `TENANTRY_ERR_MOVE_UNSUPPORTED` when the copies disagree on a
 * table's primary key or the new copy lacks a table or column that holds the tenant's data.
 */
export async function moveTables(
  tenantId: number,
  catalog: Db,
  sides: { source: Db; target: Db; from: Placement; to: Placement },
): Promise<{ tables: MoveTable[]; byOid: Map<number, MoveTable> }> {
  const { source, target, from, to } = sides;
  const candidates = await candidatesFor(catalog);
  const tables: MoveTable[] = [];
  const byOid = new Map<number, MoveTable>();
  for (const c of candidates) {
    const [fromName, toName] = [c.at(from), c.at(to)];
    if (sameDatabase(from, to) && quote(fromName) === quote(toName)) continue;
    const [a, b] = await Promise.all([shape(source, fromName), shape(target, toName)]);
    if (!a && c.optional) continue;
    if (!a || !b) {
      throw new TenantryError('MOVE_UNSUPPORTED', {
        problem: `table ${c.name} exists in ${a ? 'the old copy only' : 'the new copy only'}; sync the tenant databases (tenantry migrate) first`,
      });
    }
    if (a.key.join(',') !== b.key.join(',') || !a.key.includes(c.tenantColumn)) {
      throw new TenantryError('MOVE_UNSUPPORTED', {
        problem: `table ${c.name} has primary key (${a.key.join(', ')}) in the old copy and (${b.key.join(', ')}) in the new one`,
      });
    }
    const table: MoveTable = {
      name: c.name,
      source: quote(fromName),
      target: quote(toName),
      tenantColumn: c.tenantColumn,
      key: a.key,
      columns: a.columns.filter((column) => b.columns.includes(column)),
      sharedInSource: sharedIn(from, fromName),
    };
    for (const column of a.columns.filter((col) => !b.columns.includes(col))) {
      const { rows: used } = await source.query(
        `SELECT 1 FROM ${table.source} WHERE ${pg.escapeIdentifier(c.tenantColumn)} = $1
           AND ${pg.escapeIdentifier(column)} IS NOT NULL LIMIT 1`,
        [tenantId],
      );
      if (used.length > 0) {
        throw new TenantryError('MOVE_UNSUPPORTED', {
          problem: `column ${c.name}.${column} holds data in the old copy but is missing in the new one`,
        });
      }
    }
    tables.push(table);
    byOid.set(a.oid, table);
  }
  return { tables, byOid };
}

/**
 * The tenant's tables in one copy alone (for cleanup and rollback, which touch one side): those
 * it does not share with `other` (a shared and a schema tenant's sequence values are one table).
 */
export async function placementTables(
  catalog: Db,
  db: Db,
  placement: Placement,
  other: Placement,
): Promise<MoveTable[]> {
  const tables: MoveTable[] = [];
  for (const c of await candidatesFor(catalog)) {
    const here = c.at(placement);
    if (sameDatabase(placement, other) && quote(here) === quote(c.at(other))) continue;
    const found = await shape(db, here);
    if (!found) continue;
    tables.push({
      name: c.name,
      source: quote(here),
      target: quote(here),
      tenantColumn: c.tenantColumn,
      key: found.key,
      columns: found.columns,
      sharedInSource: sharedIn(placement, here),
    });
  }
  return tables;
}
