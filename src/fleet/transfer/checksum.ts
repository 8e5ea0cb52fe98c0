import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  readSegment,
  readShape,
  tableKey,
  withPortableSettings,
  type Queryable,
  type TableShape,
  type TenantPlacement,
  type TransferTable,
} from './placement.js';

/** One table's share of a tenant: how many rows, and their checksum. */
export interface TableChecksum {
  /** `schema.table`. */
  readonly table: string;
  readonly rows: number;
  /**
   * Order-independent checksum of the rows: two sums of 60-bit slices of each row's md5, where a
   * row is its JSON object without the tenant column (and without an empty `tenantry_ext`),
   * rendered under the portable settings. Equal rows give equal checksums in any placement.
   */
  readonly checksum: string;
}

const q = pg.escapeIdentifier;

/**
 * The SQL expression (over alias `t`) of a row as the export writes it: `to_jsonb(t)` without the
 * tenant column; `tenantry_ext` (per-tenant columns) only when it holds something.
 */
export function rowExpression(shape: Pick<TableShape, 'tenantColumn' | 'hasExt'>): string {
  const base = `(to_jsonb(t) - ${pg.escapeLiteral(shape.tenantColumn)}`;
  if (!shape.hasExt) return `${base})`;
  return `(${base} - 'tenantry_ext') || CASE WHEN t.tenantry_ext IS NULL OR t.tenantry_ext = '{}'::jsonb THEN '{}'::jsonb
          ELSE jsonb_build_object('tenantry_ext', t.tenantry_ext) END)`;
}

/** Accumulates the checksum of rows given as JSON text, as {@link tenantChecksums} computes it. */
export class RowDigest {
  #a = 0n;
  #b = 0n;
  #rows = 0;

  /** Adds one row (its JSON object text exactly as PostgreSQL rendered it). */
  add(rowJson: string): void {
    const h = createHash('md5').update(rowJson, 'utf8').digest('hex');
    this.#a += BigInt(`0x${h.slice(0, 15)}`);
    this.#b += BigInt(`0x${h.slice(15, 30)}`);
    this.#rows++;
  }

  get rows(): number {
    return this.#rows;
  }

  get checksum(): string {
    return `${this.#a}-${this.#b}`;
  }
}

/** Checksum of one table's rows of one placement, computed by PostgreSQL. */
async function tableChecksum(
  db: Queryable,
  placement: TenantPlacement,
  table: TransferTable,
): Promise<TableChecksum> {
  const shape = await readShape(db, placement, table);
  const { rows } = await db.query<{ n: string; a: string; b: string }>(
    `SELECT count(*)::text AS n,
            coalesce(sum(('x' || substr(h, 1, 15))::bit(60)::bigint), 0)::text AS a,
            coalesce(sum(('x' || substr(h, 16, 15))::bit(60)::bigint), 0)::text AS b
     FROM (SELECT md5((${rowExpression(shape)})::text) AS h FROM ${shape.relation} t
           WHERE t.${q(shape.tenantColumn)} = $1) s`,
    [readSegment(placement, table)],
  );
  const row = rows[0];
  return { table: tableKey(table), rows: Number(row?.n ?? 0), checksum: `${row?.a ?? 0}-${row?.b ?? 0}` };
}

/**
 * Per multi-tenant table, the number of `placement`'s rows and their checksum, read on `db` (an
 * operator connection to the database holding them; see {@link withPlacementClient}). The result
 * is the same for the same rows whatever the placement (shared, schema, database), server or
 * tenant id: compare a tenant before and after an export and import, a copy, or a move. Read in
 * one REPEATABLE READ transaction of your own for a consistent snapshot across tables; it works
 * inside or outside one and leaves the session's settings as they were. Throws
 * `TENANTRY_ERR_TRANSFER_SHAPE` when a table is missing from the placement.
 */
export async function tenantChecksums(
  db: Queryable,
  placement: TenantPlacement,
  tables: readonly TransferTable[],
): Promise<TableChecksum[]> {
  return withPortableSettings(db, async () => {
    const result: TableChecksum[] = [];
    for (const table of tables) result.push(await tableChecksum(db, placement, table));
    return result;
  });
}
