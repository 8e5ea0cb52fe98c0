import pg from 'pg';
import type { RegisteredTable } from '../catalog/index.js';
import type { FleetTenant, Queryable } from './fleet-store.js';

/** What a migration step runs on. */
export type TargetKind = 'shared' | 'schema-template' | 'database-template' | 'schema' | 'database';

/** One place the application's tables live: the catalog database, a template, a tenant. */
export interface Target {
  readonly kind: TargetKind;
  /** For messages and progress: `shared`, `template schema`, `tenant Acme (schema)` … */
  readonly label: string;
  /** Schema and database tenants. */
  readonly tenant?: FleetTenant;
  /** Schema targets: the schema holding the copies. */
  readonly schema?: string;
  /** Database targets: where the database is. */
  readonly server?: string;
  readonly database?: string;
  /** Database targets: the role tenant-facing objects are granted to (besides the app role). */
  readonly role?: string;
}

/** The state of one registered table in a target (its base table, its copy, its foreign table). */
export interface Relation {
  readonly oid: number;
  /** Qualified name. */
  readonly name: string;
  readonly columns: readonly string[];
  /** Columns with types, tenantry_ext left out (what tenant-facing views show). */
  readonly shape: string;
  /** Carries tenantry's isolation policy (a copy a migration created has none yet). */
  readonly secured: boolean;
}

/** Registered tables (by `schema.table`) and where each stands in a target; undefined = missing. */
export interface Snapshot {
  readonly registry: ReadonlyMap<string, RegisteredTable>;
  readonly relations: ReadonlyMap<string, Relation | undefined>;
}

/** `schema.table` of a registered table. */
export function tableKey(t: Pick<RegisteredTable, 'schema' | 'table'>): string {
  return `${t.schema}.${t.table}`;
}

/** The registered tables, read from the catalog database. */
export async function readRegistry(db: Queryable): Promise<RegisteredTable[]> {
  const { rows } = await db.query<{
    schema_name: string;
    table_name: string;
    kind: 'multi_tenant' | 'shared';
    tenant_column: string | null;
    writable: boolean;
  }>(
    'SELECT schema_name, table_name, kind, tenant_column, writable FROM tenantry.registered_table ORDER BY 1, 2',
  );
  return rows.map((r) => ({
    schema: r.schema_name,
    table: r.table_name,
    kind: r.kind,
    tenantColumn: r.tenant_column,
    writable: r.writable,
  }));
}

/** Where registered table `t` lives in `target` (undefined: not there at all). */
function relationName(target: Target, t: RegisteredTable): string | undefined {
  const q = pg.escapeIdentifier;
  switch (target.kind) {
    case 'schema':
    case 'schema-template':
      return t.kind === 'multi_tenant' ? `${q(target.schema ?? '')}.${q(t.table)}` : undefined;
    default:
      return `${q(t.schema)}.${q(t.table)}`;
  }
}

/**
 * Reads where every registered table stands in `target` (`db` is connected to it). The registry
 * is read from `db` for catalog-database targets and taken from `registry` for database ones.
 */
export async function snapshot(
  db: Queryable,
  target: Target,
  registry?: readonly RegisteredTable[],
): Promise<Snapshot> {
  const tables = registry ?? (await readRegistry(db));
  const wanted = tables.flatMap((t) => {
    const name = relationName(target, t);
    return name === undefined ? [] : [{ key: tableKey(t), name }];
  });
  const { rows } = await db.query<{
    key: string;
    oid: number | null;
    name: string | null;
    columns: string[] | null;
    shape: string | null;
    secured: boolean;
  }>(
    `SELECT k.key, c.oid::int AS oid, c.oid::regclass::text AS name,
            CASE WHEN c.oid IS NOT NULL THEN ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) END AS columns,
            (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname <> 'tenantry_ext') AS shape,
            EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenantry_isolation') AS secured
     FROM unnest($1::text[], $2::text[]) AS k(key, rel) LEFT JOIN pg_class c ON c.oid = to_regclass(k.rel)`,
    [wanted.map((w) => w.key), wanted.map((w) => w.name)],
  );
  const relations = new Map<string, Relation | undefined>();
  for (const row of rows) {
    relations.set(
      row.key,
      row.oid === null
        ? undefined
        : {
            oid: row.oid,
            name: row.name ?? '',
            columns: row.columns ?? [],
            shape: row.shape ?? '',
            secured: row.secured,
          },
    );
  }
  return { registry: new Map(tables.map((t) => [tableKey(t), t])), relations };
}

/** Keys of registered tables present in both snapshots whose columns differ. */
export function changedTables(before: Snapshot, after: Snapshot): string[] {
  return [...after.relations].flatMap(([key, rel]) => {
    const old = before.relations.get(key);
    return rel && old && (old.shape !== rel.shape || old.oid !== rel.oid) ? [key] : [];
  });
}
