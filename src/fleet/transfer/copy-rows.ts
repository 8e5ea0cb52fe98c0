import pg from 'pg';
import { TenantryError } from '../../errors.js';
import { RowDigest, rowExpression, type TableChecksum } from './checksum.js';
import {
  checkSameShape,
  readSegment,
  readShape,
  tableKey,
  withPortableSettings,
  type PlacementDb,
  type Queryable,
  type TableShape,
  type TransferTable,
} from './placement.js';

const q = pg.escapeIdentifier;

/** Default number of rows per batch (one SELECT and one INSERT each). */
export const DEFAULT_BATCH_SIZE = 1000;

/** Options of {@link readTenantRows} and {@link copyTenantRows}. */
export interface BatchOptions {
  /** Rows per batch (default 1000). */
  readonly batchSize?: number;
  /** Stops between batches with `TENANTRY_ERR_TRANSFER_INTERRUPTED`. */
  readonly signal?: AbortSignal;
}

/** Throws `TENANTRY_ERR_TRANSFER_INTERRUPTED` when `signal` was aborted. */
export function checkAborted(signal: AbortSignal | undefined, operation: string, outcome: string): void {
  if (signal?.aborted) throw new TenantryError('TRANSFER_INTERRUPTED', { operation, outcome });
}

/**
 * Reads `placement`'s rows of the table `shape` describes in primary-key order, `batchSize` at a
 * time (keyset pagination: no cursor, so `db` may be in a transaction of the caller's or not),
 * each row as the JSON object text the export writes. Call inside {@link withPortableSettings}.
 */
export async function* readTenantRows(
  db: Queryable,
  shape: TableShape,
  segment: number,
  options: BatchOptions = {},
): AsyncGenerator<string[]> {
  const size = Math.max(1, Math.trunc(options.batchSize ?? DEFAULT_BATCH_SIZE));
  const select = `SELECT (${rowExpression(shape)})::text AS r FROM ${shape.relation} t WHERE t.${q(shape.tenantColumn)} = $1`;
  if (shape.primaryKey.length === 0) {
    const { rows } = await db.query<{ r: string }>(select, [segment]);
    if (rows.length > 0) yield rows.map((r) => r.r);
    return;
  }
  const keys = shape.primaryKey.map((c) => `t.${q(c)}`).join(', ');
  const after = shape.primaryKey.map((c) => `p.${q(c)}`).join(', ');
  let last: string | undefined;
  for (;;) {
    checkAborted(
      options.signal,
      'copy',
      'the rows read so far were handed on; roll back what they went into',
    );
    const { rows } =
      last === undefined
        ? await db.query<{ r: string }>(`${select} ORDER BY ${keys} LIMIT ${size}`, [segment])
        : await db.query<{ r: string }>(
            `${select} AND (${keys}) > (SELECT ${after} FROM jsonb_populate_record(NULL::${shape.relation}, $2::jsonb) p)
             ORDER BY ${keys} LIMIT ${size}`,
            [segment, last],
          );
    if (rows.length === 0) return;
    const batch = rows.map((r) => r.r);
    yield batch;
    if (rows.length < size) return;
    last = batch[batch.length - 1];
  }
}

/**
 * Inserts rows (JSON object texts as {@link readTenantRows} yields them) into the table `shape`
 * describes, as tenant `tenantId`: one INSERT … SELECT FROM jsonb_populate_recordset per call.
 * Generated columns are computed again; identity columns keep their values.
 */
export async function insertRows(
  db: Queryable,
  shape: TableShape,
  tenantId: number,
  rows: readonly string[],
): Promise<void> {
  if (rows.length === 0) return;
  const columns = shape.columns.filter((c) => !c.generated).map((c) => q(c.name));
  if (shape.hasExt) columns.push('tenantry_ext');
  const list = columns.join(', ');
  const values = columns.map((c) =>
    c === 'tenantry_ext' ? "coalesce(r.tenantry_ext, '{}'::jsonb)" : `r.${c}`,
  );
  await db.query(
    `INSERT INTO ${shape.relation} (${q(shape.tenantColumn)}${list ? `, ${list}` : ''}) OVERRIDING SYSTEM VALUE
     SELECT $2::${shape.tenantType}${values.length ? `, ${values.join(', ')}` : ''}
     FROM jsonb_populate_recordset(NULL::${shape.relation}, $1::jsonb) r`,
    [`[${rows.join(',')}]`, tenantId],
  );
}

/**
 * Advances the serial and identity sequences of the table `shape` describes past `tenantId`'s
 * rows (and past `floor` values, per column), so that new rows never collide with copied ones.
 */
export async function advanceSerials(
  db: Queryable,
  shape: Pick<TableShape, 'relation' | 'tenantColumn' | 'serials'>,
  tenantId: number,
  floor: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  for (const { column, sequence } of shape.serials) {
    await db.query(
      `SELECT setval($1::regclass, v) FROM (
         SELECT greatest((SELECT max(${q(column)}) FROM ${shape.relation} WHERE ${q(shape.tenantColumn)} = $2)::bigint,
                         $3::bigint, (SELECT last_value FROM ${sequence})) AS v) s
       WHERE v IS NOT NULL AND v > (SELECT last_value FROM ${sequence})`,
      [sequence, tenantId, floor.get(column) ?? null],
    );
  }
}

/** Options of {@link copyTenantRows}. */
export interface CopyOptions extends BatchOptions {
  /** Called after each batch with the rows copied so far. */
  readonly onBatch?: (copied: number) => void;
}

/**
 * Copies `from`'s rows of one multi-tenant table into `to` (as `to.placement.id`), in batches of
 * `batchSize`: keyset-paged SELECTs on `from.db`, multi-row INSERTs on `to.db` (both operator
 * connections, e.g. from {@link withPlacementClient}; the two may be on different servers). The
 * tables must have the same columns (`TENANTRY_ERR_TRANSFER_SHAPE` otherwise). Transactions are
 * the caller's: run it in a REPEATABLE READ transaction on `from` and one transaction on `to`,
 * and compare {@link tenantChecksums} before committing, for an all-or-nothing copy. Serial
 * sequences on `to` are advanced past the copied rows. Answers the copied rows' count and
 * checksum (comparable with {@link tenantChecksums}); `TENANTRY_ERR_TRANSFER_INTERRUPTED` when
 * `signal` aborts between batches.
 */
export async function copyTenantRows(
  from: PlacementDb,
  to: PlacementDb,
  table: TransferTable,
  options: CopyOptions = {},
): Promise<TableChecksum> {
  const source = await readShape(from.db, from.placement, table);
  const target = await readShape(to.db, to.placement, table);
  checkSameShape(tableKey(table), source.columns, target);
  const digest = new RowDigest();
  await withPortableSettings(from.db, async () => {
    for await (const batch of readTenantRows(from.db, source, readSegment(from.placement, table), options)) {
      // per-tenant column values must not vanish into a table that cannot hold them
      if (!target.hasExt && source.hasExt && batch.some((r) => r.includes('"tenantry_ext"'))) {
        throw new TenantryError('TRANSFER_SHAPE', {
          table: tableKey(table),
          problem:
            'the rows carry per-tenant column values and the target table has no tenantry_ext; add the columns first',
        });
      }
      await insertRows(to.db, target, to.placement.id, batch);
      for (const row of batch) digest.add(row);
      options.onBatch?.(digest.rows);
    }
  });
  await advanceSerials(to.db, target, to.placement.id);
  return { table: tableKey(table), rows: digest.rows, checksum: digest.checksum };
}
