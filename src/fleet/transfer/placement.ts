import pg from 'pg';
import type { Tenant } from '../../catalog/index.js';
import { withDatabase } from '../../connection-url.js';
import { TenantryError } from '../../errors.js';
import { withClient } from '../../isolation/database.js';

/** Anything that runs a query: a pg.Client, a pool client (not a pg.Pool: batches read on). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** A multi-tenant table, as the table registry names it. */
export interface TransferTable {
  readonly schema: string;
  readonly table: string;
  readonly tenantColumn: string;
}

/**
 * Where one tenant's rows live, as far as reading and writing them needs: its id (the value of
 * the tenant column), its isolation model and, for schema tenants, its data schema. A
 * {@link Tenant} is one.
 */
export interface TenantPlacement {
  readonly id: number;
  readonly isolation: Tenant['isolation'];
  readonly schemaName: string | null;
  /**
   * Segments to read instead of the tenant's own, per table (`schema.table`): a group's segment
   * that the tenant alone belongs to. Writing always uses {@link id}.
   */
  readonly segments?: ReadonlyMap<string, number>;
}

/** A placement and an operator connection to the database that holds its rows. */
export interface PlacementDb {
  readonly db: Queryable;
  readonly placement: TenantPlacement;
}

const q = pg.escapeIdentifier;

/** `schema.table` of a registered table (unquoted): the key used in files and reports. */
export function tableKey(t: Pick<TransferTable, 'schema' | 'table'>): string {
  return `${t.schema}.${t.table}`;
}

/** The relation holding `placement`'s rows of `table`, quoted. */
export function dataRelation(placement: TenantPlacement, table: TransferTable): string {
  if (placement.isolation === 'schema') {
    if (!placement.schemaName)
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'placement',
        problem: 'a schema tenant needs its schema',
      });
    return `${q(placement.schemaName)}.${q(table.table)}`;
  }
  return `${q(table.schema)}.${q(table.table)}`;
}

/** The segment read for `table`: a sole group's segment, or the tenant's own id. */
export function readSegment(placement: TenantPlacement, table: TransferTable): number {
  return placement.segments?.get(tableKey(table)) ?? placement.id;
}

/**
 * SQL for the sequence that feeds column `a` (pg_attribute) of relation `$1`: a serial's or an
 * identity's own, or one its default calls `nextval` on; NULL for none.
 */
const SERIAL_SEQUENCE = `coalesce(pg_get_serial_sequence($1, a.attname),
  (SELECT d.refobjid::regclass::text FROM pg_attrdef ad
   JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
   JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
   WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum LIMIT 1))`;

/** The serial and identity columns of `relation` (quoted, qualified) with their sequences. */
export async function readSerialColumns(
  db: Queryable,
  relation: string,
): Promise<{ column: string; sequence: string }[]> {
  const { rows } = await db.query<{ column: string; sequence: string }>(
    `SELECT column_name AS column, sequence FROM (
       SELECT a.attname AS column_name, ${SERIAL_SEQUENCE} AS sequence
       FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped) c
     WHERE sequence IS NOT NULL`,
    [relation],
  );
  return rows;
}

/** What reading and writing one table in one placement needs to know of it. */
export interface TableShape {
  readonly relation: string;
  readonly tenantColumn: string;
  /** format_type of the tenant column. */
  readonly tenantType: string;
  /** Columns but the tenant column and tenantry_ext, in table order, with their types. */
  readonly columns: readonly { name: string; type: string; generated: boolean }[];
  /** Primary-key columns after the tenant column. */
  readonly primaryKey: readonly string[];
  readonly hasExt: boolean;
  /** Serial and identity columns with their sequence (qualified), to advance after a copy. */
  readonly serials: readonly { column: string; sequence: string }[];
}

/** Reads the shape of `table` in `placement`; throws `TENANTRY_ERR_TRANSFER_SHAPE` when missing. */
export async function readShape(
  db: Queryable,
  placement: TenantPlacement,
  table: TransferTable,
): Promise<TableShape> {
  const relation = dataRelation(placement, table);
  const { rows } = await db.query<{
    name: string;
    type: string;
    generated: boolean;
    pk: number | null;
    serial: string | null;
  }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attgenerated <> '' AS generated,
            array_position(con.conkey, a.attnum) AS pk,
            ${SERIAL_SEQUENCE} AS serial
     FROM pg_attribute a
     LEFT JOIN pg_constraint con ON con.conrelid = a.attrelid AND con.contype = 'p'
     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum`,
    [relation],
  );
  if (rows.length === 0) {
    throw new TenantryError('TRANSFER_SHAPE', {
      table: tableKey(table),
      problem: `${relation} does not exist in the tenant's placement`,
    });
  }
  const tenant = rows.find((r) => r.name === table.tenantColumn);
  if (!tenant) {
    throw new TenantryError('TRANSFER_SHAPE', {
      table: tableKey(table),
      problem: `it has no tenant column ${table.tenantColumn}`,
    });
  }
  const rest = rows.filter((r) => r.name !== table.tenantColumn && r.name !== 'tenantry_ext');
  return {
    relation,
    tenantColumn: table.tenantColumn,
    tenantType: tenant.type,
    columns: rest.map((r) => ({ name: r.name, type: r.type, generated: r.generated })),
    primaryKey: rest
      .filter((r) => r.pk !== null)
      .sort((a, b) => (a.pk ?? 0) - (b.pk ?? 0))
      .map((r) => r.name),
    hasExt: rows.some((r) => r.name === 'tenantry_ext'),
    serials: rest.flatMap((r) => (r.serial ? [{ column: r.name, sequence: r.serial }] : [])),
  };
}

/**
 * Throws `TENANTRY_ERR_TRANSFER_SHAPE` unless `target` has exactly the columns (names and
 * types) of `source` — rows are compared and copied column by column.
 */
export function checkSameShape(
  table: string,
  source: readonly { name: string; type: string }[],
  target: TableShape,
): void {
  const want = new Map(source.map((c) => [c.name, c.type]));
  const have = new Map(target.columns.map((c) => [c.name, c.type]));
  for (const [name, type] of want) {
    const found = have.get(name);
    if (found === undefined)
      throw new TenantryError('TRANSFER_SHAPE', {
        table,
        problem: `column ${name} (${type}) is missing here`,
      });
    if (found !== type)
      throw new TenantryError('TRANSFER_SHAPE', {
        table,
        problem: `column ${name} is ${found} here, ${type} in the source`,
      });
  }
  for (const [name, type] of have) {
    if (!want.has(name))
      throw new TenantryError('TRANSFER_SHAPE', {
        table,
        problem: `column ${name} (${type}) exists here only`,
      });
  }
}

/**
 * Session settings under which PostgreSQL renders values the same on every server: rows and
 * checksums are computed under them.
 */
export const PORTABLE_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '1',
  bytea_output: 'hex',
};

/**
 * Runs `fn` with {@link PORTABLE_SETTINGS} in force on `db`, then puts the session's own values
 * back (inside or outside a transaction; a rolled-back transaction restores them anyway).
 */
export async function withPortableSettings<T>(db: Queryable, fn: () => Promise<T>): Promise<T> {
  const names = Object.keys(PORTABLE_SETTINGS);
  const { rows } = await db.query<{ v: string[] }>(
    'SELECT array_agg(current_setting(n) ORDER BY i) AS v FROM unnest($1::text[]) WITH ORDINALITY u(n, i)',
    [names],
  );
  const saved = rows[0]?.v ?? [];
  await db.query('SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) u(n, v)', [
    names,
    names.map((n) => PORTABLE_SETTINGS[n]),
  ]);
  try {
    return await fn();
  } finally {
    await db
      .query('SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) u(n, v)', [names, saved])
      .catch(() => undefined);
  }
}

/** What opening a placement's database needs from a tenantry instance. */
export interface PlacementHost {
  readonly servers: { url(server: string): Promise<string> };
}

/**
 * Runs `fn` with a fresh operator connection to the database holding `tenant`'s rows — the
 * catalog database for shared and schema tenants, its own database (on its server) for database
 * tenants — then closes it. For the reusable pieces: {@link tenantChecksums}, {@link copyTenantRows}.
 */
export async function withPlacementClient<T>(
  host: PlacementHost,
  tenant: Pick<Tenant, 'isolation' | 'server' | 'databaseName'>,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  let url = await host.servers.url(tenant.server);
  if (tenant.isolation === 'database' && tenant.databaseName) url = withDatabase(url, tenant.databaseName);
  return withClient(url, fn, 'tenantry-transfer');
}
