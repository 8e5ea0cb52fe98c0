import type pg from 'pg';
import type { Tenant } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { RowDigest, type TableChecksum } from './checksum.js';
import { DEFAULT_BATCH_SIZE, advanceSerials, checkAborted, insertRows } from './copy-rows.js';
import {
  corrupt,
  parseRecord,
  rowOfLine,
  type HeaderRecord,
  type ObjectRecord,
  type SequenceRecord,
  type SerialRecord,
  type TableSpec,
} from './format.js';
import type { TransferProgress } from './host.js';
import { writeSequenceValues } from './objects.js';
import { checkSameShape, readShape, tableKey, type TableShape, type TransferTable } from './placement.js';

/** What {@link restoreRows} did. */
export interface RestoredRows {
  readonly tables: readonly TableChecksum[];
  /** Every object record of the file (indexes and views are created by the caller). */
  readonly objects: readonly ObjectRecord[];
  readonly rows: number;
}

/** Options of {@link restoreRows}. */
export interface RestoreOptions {
  readonly batchSize?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: TransferProgress) => void;
  /** Checksums of the restored rows, read on the target inside the restore's transaction. */
  readonly verify: (db: pg.ClientBase) => Promise<TableChecksum[]>;
}

const OUTCOME = 'nothing was kept: the partly imported tenant was removed';

/** The table being read from the file. */
interface Current {
  readonly spec: TableSpec;
  readonly shape: TableShape;
  readonly digest: RowDigest;
  batch: string[];
}

/**
 * Reads the rest of an export stream after its header — rows, objects, trailer — and writes the
 * rows, sequence values and serial positions into `tenant`'s tables on `target` in one
 * transaction, which commits only when the file is whole, each table's rows match the file's
 * checksum, and the restored rows' own checksums match too.
 */
export async function restoreRows(
  target: pg.ClientBase,
  tenant: Tenant,
  header: HeaderRecord,
  tables: readonly TransferTable[],
  source: { next: () => Promise<string | undefined>; lineNo: () => number },
  options: RestoreOptions,
): Promise<RestoredRows> {
  const size = Math.max(1, Math.trunc(options.batchSize ?? DEFAULT_BATCH_SIZE));
  const specs = new Map(header.tables.map((s) => [s.table, s]));
  const shapes = new Map<string, TableShape>();
  for (const table of tables) {
    const key = tableKey(table);
    const shape = await readShape(target, tenant, table);
    checkSameShape(key, (specs.get(key) as TableSpec).columns, shape);
    shapes.set(key, shape);
  }
  const totalRows = header.tables.reduce((n, s) => n + s.rows, 0);
  let done = 0;
  const ended = new Map<string, TableChecksum>();
  const objects: ObjectRecord[] = [];
  let current: Current | undefined;
  let trailer: Extract<ReturnType<typeof parseRecord>, { type: 'trailer' }> | undefined;

  const flush = async (c: Current) => {
    await insertRows(target, c.shape, tenant.id, c.batch);
    done += c.batch.length;
    c.batch = [];
    options.onProgress?.({ phase: 'rows', table: c.spec.table, rows: done, totalRows });
    checkAborted(options.signal, 'import', OUTCOME);
  };

  await target.query('BEGIN');
  try {
    for (let line = await source.next(); line !== undefined; line = await source.next()) {
      const row = rowOfLine(line);
      if (row !== undefined) {
        if (!current) corrupt(`line ${source.lineNo()} is a row outside any table`);
        current.digest.add(row);
        current.batch.push(row);
        if (current.batch.length >= size) await flush(current);
        continue;
      }
      if (line.trim() === '') continue;
      const record = parseRecord(line, source.lineNo());
      if (current && record.type !== 'table-end')
        corrupt(`line ${source.lineNo()}: the rows of ${current.spec.table} do not end`);
      switch (record.type) {
        case 'table': {
          const spec = specs.get(record.table);
          if (!spec || ended.has(record.table))
            corrupt(`line ${source.lineNo()} starts table ${record.table} again or unannounced`);
          current = {
            spec,
            shape: shapes.get(record.table) as TableShape,
            digest: new RowDigest(),
            batch: [],
          };
          break;
        }
        case 'table-end': {
          if (current?.spec.table !== record.table)
            corrupt(`line ${source.lineNo()} ends a table that did not start`);
          await flush(current);
          if (current.digest.rows !== record.rows || current.digest.checksum !== record.checksum) {
            corrupt(
              `the rows of ${record.table} do not match their checksum (the file was changed or damaged)`,
            );
          }
          ended.set(record.table, { table: record.table, rows: record.rows, checksum: record.checksum });
          current = undefined;
          break;
        }
        case 'trailer':
          trailer = record;
          break;
        case 'header':
          corrupt(`line ${source.lineNo()} is a second header`);
          break;
        default:
          objects.push(record);
      }
      if (trailer) break;
    }
    if (!trailer) corrupt('it ends before its trailer (the file is truncated)');
    for (let line = await source.next(); line !== undefined; line = await source.next()) {
      if (line.trim() !== '') corrupt(`line ${source.lineNo()} follows the trailer`);
    }
    checkTrailer(trailer, header, ended, objects.length);
    options.onProgress?.({ phase: 'objects', rows: done, totalRows });
    await restoreSequences(target, tenant, tables, shapes, objects);
    options.onProgress?.({ phase: 'verify', rows: done, totalRows });
    const restored = await options.verify(target);
    for (const found of restored) {
      const expected = ended.get(found.table) as TableChecksum;
      if (found.rows !== expected.rows || found.checksum !== expected.checksum) {
        throw new TenantryError('TRANSFER_CHECKSUM', {
          table: found.table,
          expected: `${expected.rows} rows, ${expected.checksum}`,
          found: `${found.rows} rows, ${found.checksum}`,
        });
      }
    }
    checkAborted(options.signal, 'import', OUTCOME);
    await target.query('COMMIT');
    return { tables: restored, objects, rows: done };
  } catch (error) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function checkTrailer(
  trailer: { tables: Readonly<Record<string, { rows: number; checksum: string }>>; objects: number },
  header: HeaderRecord,
  ended: ReadonlyMap<string, TableChecksum>,
  objects: number,
): void {
  for (const spec of header.tables) {
    const end = ended.get(spec.table);
    const listed = trailer.tables[spec.table];
    if (!end) corrupt(`the rows of ${spec.table} are missing`);
    if (listed?.rows !== end.rows || listed.checksum !== end.checksum) {
      corrupt(`the trailer disagrees with the rows of ${spec.table}`);
    }
  }
  if (Object.keys(trailer.tables).length !== header.tables.length || trailer.objects !== objects) {
    corrupt('the trailer does not list what the file holds');
  }
}

/** Multi-tenant sequence values, then serial positions (past the restored rows). */
async function restoreSequences(
  target: pg.ClientBase,
  tenant: Tenant,
  tables: readonly TransferTable[],
  shapes: ReadonlyMap<string, TableShape>,
  objects: readonly ObjectRecord[],
): Promise<void> {
  const sequences = objects.filter((o): o is SequenceRecord => o.type === 'sequence');
  const missing = await writeSequenceValues(target, tenant.id, sequences);
  if (missing.length > 0) {
    throw new TenantryError('TRANSFER_SHAPE', {
      table: `sequence ${missing.join(', ')}`,
      problem: 'no such multi-tenant sequence here (create it with `tenantry sequence create`)',
    });
  }
  const serials = objects.filter((o): o is SerialRecord => o.type === 'serial');
  for (const table of tables) {
    const key = tableKey(table);
    const floor = new Map(serials.filter((s) => s.table === key).map((s) => [s.column, s.value]));
    await advanceSerials(target, shapes.get(key) as TableShape, tenant.id, floor);
  }
}
