import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { advanceSerials } from '../transfer/copy-rows.js';
import { PORTABLE_SETTINGS, readSerialColumns } from '../transfer/placement.js';
import type { Captured, Db } from './capture.js';
import type { MoveTable, Side } from './tables.js';

const q = pg.escapeIdentifier;
/** Captured changes applied per round of catching up. */
export const BATCH = 2000;

/**
 * Prepares an operator session on either copy: transfer's portable settings — UTC, ISO dates, hex
 * bytea, shortest exact floats (rows travel as JSON text, and checksums compare it, across servers), the tenant's setting (for an operator under FORCE ROW LEVEL SECURITY),
 * and — where allowed (superuser) — replica mode, so foreign keys and triggers don't fire while
 * rows arrive in table order: the old copy already enforced them.
 */
export async function prepareSession(db: Db, tenantId: number): Promise<void> {
  const settings = { ...PORTABLE_SETTINGS, 'tenantry.tenant': String(Math.trunc(tenantId)) };
  await db.query('SELECT set_config(n, v, false) FROM unnest($1::text[], $2::text[]) u(n, v)', [
    Object.keys(settings),
    Object.values(settings),
  ]);
  await db.query('SET session_replication_role = replica').catch(() => undefined);
}

/** Upserts rows (JSON texts of the old copy's rows) into the new copy. */
async function upsertRows(target: Db, table: MoveTable, rows: readonly string[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = table.columns.map(q).join(', ');
  const rest = table.columns.filter((c) => !table.key.includes(c));
  const conflict = `ON CONFLICT (${table.key.map(q).join(', ')}) DO ${
    rest.length === 0 ? 'NOTHING' : `UPDATE SET ${rest.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}`
  }`;
  await target.query(
    `INSERT INTO ${table.target} (${cols}) OVERRIDING SYSTEM VALUE
     SELECT ${cols} FROM jsonb_populate_recordset(NULL::${table.target}, $1::jsonb) ${conflict}`,
    [`[${rows.join(',')}]`],
  );
}

/** Counts the rows of COPY text going by (every row ends in a newline; newlines in values are escaped). */
class RowCounter extends Transform {
  rows = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) this.rows++;
    done(null, chunk);
  }
}

/**
 * Copies the tenant's rows of every table from `source` — inside the caller's REPEATABLE READ
 * transaction, so one snapshot — to `target`, streamed with COPY (text format, the columns both
 * copies have; identity values kept). `onRows` hears the rows of each table; `signal` stops it.
 */
export async function copySnapshot(
  source: pg.ClientBase,
  target: pg.ClientBase,
  tenantId: number,
  tables: readonly MoveTable[],
  onRows: (table: MoveTable, rows: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  let total = 0;
  for (const table of tables) {
    signal?.throwIfAborted();
    const cols = table.columns.map(q).join(', ');
    const counter = new RowCounter();
    let reported = 0;
    const tick = setInterval(() => {
      onRows(table, counter.rows - reported);
      reported = counter.rows;
    }, 500);
    try {
      await pipeline(
        source.query(
          copyTo(
            `COPY (SELECT ${cols} FROM ${table.source} WHERE ${q(table.tenantColumn)} = ${Math.trunc(tenantId)}) TO STDOUT`,
          ),
        ),
        counter,
        target.query(copyFrom(`COPY ${table.target} (${cols}) FROM STDIN`)),
        ...(signal ? [{ signal }] : []),
      );
    } finally {
      clearInterval(tick);
    }
    onRows(table, counter.rows - reported);
    total += counter.rows;
  }
  return total;
}

/** Deletes every row of the tenant in `tables` (a half-made new copy, or the old copy at the end). */
export async function deleteTenantRows(
  db: Db,
  tenantId: number,
  tables: readonly MoveTable[],
  side: Side,
): Promise<number> {
  let deleted = 0;
  for (const table of [...tables].reverse()) {
    const result = await db.query(`DELETE FROM ${table[side]} WHERE ${q(table.tenantColumn)} = $1`, [
      tenantId,
    ]);
    deleted += result.rowCount ?? 0;
  }
  return deleted;
}

function keyOf(table: MoveTable, row: Record<string, unknown>): string {
  return JSON.stringify(table.key.map((k) => row[k] ?? null));
}

/**
 * Brings the new copy's rows for `changes` (captured keys) to the old copy's current state:
 * present rows are upserted, vanished ones deleted — idempotent, so replaying is harmless.
 */
export async function applyChanges(
  source: Db,
  target: Db,
  changes: readonly Captured[],
  byOid: ReadonlyMap<number, MoveTable>,
): Promise<void> {
  const perTable = new Map<MoveTable, Map<string, Record<string, unknown>>>();
  for (const change of changes) {
    const table = byOid.get(change.rel);
    if (!table) continue;
    let keys = perTable.get(table);
    if (!keys) perTable.set(table, (keys = new Map<string, Record<string, unknown>>()));
    keys.set(keyOf(table, change.key), change.key);
  }
  for (const [table, keys] of perTable) {
    const match = table.key.map((k) => `t.${q(k)} = k.${q(k)}`).join(' AND ');
    const { rows } = await source.query<{ row: string }>(
      `SELECT to_jsonb(t)::text AS row FROM ${table.source} t
       WHERE EXISTS (SELECT 1 FROM jsonb_populate_recordset(NULL::${table.source}, $1::jsonb) k WHERE ${match})`,
      [JSON.stringify([...keys.values()])],
    );
    const present = new Set(rows.map((r) => keyOf(table, JSON.parse(r.row) as Record<string, unknown>)));
    const gone = [...keys].filter(([key]) => !present.has(key)).map(([, value]) => value);
    if (gone.length > 0) {
      await target.query(
        `DELETE FROM ${table.target} t
         USING jsonb_populate_recordset(NULL::${table.target}, $1::jsonb) k WHERE ${match}`,
        [JSON.stringify(gone)],
      );
    }
    await upsertRows(
      target,
      table,
      rows.map((r) => r.row),
    );
  }
}

/** Row count and checksum of the tenant's rows of one table (over the columns both copies have). */
export interface TableSum {
  readonly rows: number;
  readonly sum: string;
}

/**
 * Counts and checksums (order-independent: a sum of 60-bit row hashes) of the tenant's rows, per
 * table name — of every row, or, where `keys` names a table, only of the rows with those keys.
 */
export async function checksums(
  db: Db,
  tenantId: number,
  tables: readonly MoveTable[],
  side: Side,
  keys?: ReadonlyMap<string, readonly Record<string, unknown>[]>,
): Promise<Map<string, TableSum>> {
  const sums = new Map<string, TableSum>();
  for (const table of tables) {
    const rel = table[side];
    const only = keys?.get(table.name);
    if (keys && !only) continue;
    const { rows: extra } = await db.query<{ extra: string[] }>(
      `SELECT coalesce(array_agg(attname::text), '{}') AS extra FROM pg_attribute
       WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attname <> ALL($2::text[])`,
      [rel, table.columns],
    );
    const match = table.key.map((k) => `t.${q(k)} = k.${q(k)}`).join(' AND ');
    const hash = `coalesce(sum(('x' || substr(md5((to_jsonb(t) - $2::text[])::text), 1, 15))::bit(60)::bigint), 0)::text`;
    // the keys drive (an index lookup each): a few changed rows of a big tenant stay cheap
    const { rows } = await db.query<{ rows: number; sum: string }>(
      only
        ? `SELECT count(*)::int AS rows, ${hash} AS sum
           FROM (SELECT DISTINCT ${table.key.map(q).join(', ')} FROM jsonb_populate_recordset(NULL::${rel}, $3::jsonb)) k
           JOIN ${rel} t ON ${match} WHERE t.${q(table.tenantColumn)} = $1`
        : `SELECT count(*)::int AS rows, ${hash} AS sum FROM ${rel} t WHERE ${q(table.tenantColumn)} = $1`,
      only ? [tenantId, extra[0]?.extra ?? [], JSON.stringify(only)] : [tenantId, extra[0]?.extra ?? []],
    );
    sums.set(table.name, rows[0] ?? { rows: 0, sum: '0' });
  }
  return sums;
}

/** Keys of changed rows, per table name, deduplicated (what the cut-over re-checks). */
export class TouchedKeys {
  readonly #tables = new Map<string, Map<string, Record<string, unknown>>>();

  /** Records the keys of `changes`. */
  add(changes: readonly Captured[], byOid: ReadonlyMap<number, MoveTable>): void {
    for (const change of changes) {
      const table = byOid.get(change.rel);
      if (!table) continue;
      let keys = this.#tables.get(table.name);
      if (!keys) this.#tables.set(table.name, (keys = new Map<string, Record<string, unknown>>()));
      keys.set(keyOf(table, change.key), change.key);
    }
  }

  /** The keys per table name. */
  byTable(): Map<string, Record<string, unknown>[]> {
    return new Map([...this.#tables].map(([name, keys]) => [name, [...keys.values()]]));
  }
}

/**
 * Advances the new copy's serial and identity sequences past the tenant's rows: they were copied
 * with their keys, and a schema or database copy has sequences of its own that start afresh.
 */
export async function advanceSequences(
  target: Db,
  tables: readonly MoveTable[],
  tenantId: number,
): Promise<void> {
  for (const table of tables) {
    const serials = await readSerialColumns(target, table.target);
    if (serials.length === 0) continue;
    await advanceSerials(
      target,
      { relation: table.target, tenantColumn: table.tenantColumn, serials },
      tenantId,
    );
  }
}
