import type { CompiledQuery, DatabaseConnection, QueryResult, TransactionSettings } from 'kysely';
import type pg from 'pg';
import { TenantryError } from '../errors.js';
import type { TenantDb } from '../session/index.js';
import { HeldTransaction, type TransactionModes } from './held-transaction.js';

/** Rows fetched per round trip when `stream()` is called without a chunk size. */
const DEFAULT_CHUNK = 100;

let cursors = 0;

/**
 * A Kysely connection of one tenant: the tenant handle of the context it was acquired in.
 * Outside a transaction each statement is one round trip on any pooled backend; inside one
 * (between {@link begin} and {@link commit}/{@link rollback}) every statement goes to the
 * transaction's backend.
 */
export class TenantryConnection implements DatabaseConnection {
  readonly #db: TenantDb;
  #held: HeldTransaction | undefined;

  /** @param db the tenant handle every statement of this connection runs on. */
  constructor(db: TenantDb) {
    this.#db = db;
  }

  /** The tenant-scoped handle statements run on now: the open transaction's, or the tenant's. */
  get db(): TenantDb {
    return this.#held?.tx ?? this.#db;
  }

  /** Begins a tenant transaction (see {@link HeldTransaction.begin} for what `settings` may ask). */
  async begin(settings: TransactionSettings): Promise<void> {
    if (this.#held)
      throw new TenantryError('INVALID_ARGUMENT', { what: 'transaction', problem: 'one is already open' });
    const modes: TransactionModes = {
      ...(settings.isolationLevel === undefined ? {} : { isolationLevel: settings.isolationLevel }),
      ...(settings.accessMode === undefined ? {} : { accessMode: settings.accessMode }),
    };
    this.#held = await HeldTransaction.begin(this.#db, modes);
  }

  /** Commits the open transaction (none open: nothing to do). */
  async commit(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    await held?.commit();
  }

  /** Rolls back the open transaction (none open: nothing to do). */
  async rollback(): Promise<void> {
    const held = this.#held;
    this.#held = undefined;
    await held?.rollback();
  }

  /** Runs one compiled query as the tenant. */
  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.db.query(compiledQuery.sql, compiledQuery.parameters);
    return toKyselyResult<R>(result);
  }

  /**
   * Streams the rows of a query `chunkSize` at a time through a server-side cursor (`DECLARE` /
   * `FETCH`), in the open transaction or else in a transaction of its own that lasts as long
   * as the stream.
   */
  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = DEFAULT_CHUNK,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'chunkSize',
        problem: 'expected a positive integer',
      });
    }
    if (this.#held) {
      yield* fetchAll<R>(this.#held.tx, compiledQuery, chunkSize);
      return;
    }
    const held = await HeldTransaction.begin(this.#db);
    let failed = false;
    try {
      yield* fetchAll<R>(held.tx, compiledQuery, chunkSize);
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      await (failed ? held.rollback() : held.commit());
    }
  }
}

/** Kysely's view of a node-postgres result (as kysely's own PostgreSQL driver reports it). */
function toKyselyResult<R>(result: pg.QueryResult): QueryResult<R> {
  const changed = ['INSERT', 'UPDATE', 'DELETE', 'MERGE'].includes(result.command);
  return {
    ...(changed ? { numAffectedRows: BigInt(result.rowCount ?? 0) } : {}),
    rows: (result.rows ?? []) as R[],
  };
}

/** Fetches every row of `query` through a cursor in the transaction `tx`. */
async function* fetchAll<R>(
  tx: TenantDb,
  query: CompiledQuery,
  chunkSize: number,
): AsyncGenerator<QueryResult<R>> {
  const cursor = `tenantry_cursor_${++cursors}`;
  await tx.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${query.sql}`, query.parameters);
  try {
    for (;;) {
      const { rows } = await tx.query(`FETCH FORWARD ${chunkSize} FROM ${cursor}`);
      if (rows.length > 0) yield { rows: rows as R[] };
      if (rows.length < chunkSize) return;
    }
  } finally {
    // In a failed transaction this fails too; the rollback that follows closes the cursor.
    await tx.query(`CLOSE ${cursor}`).catch(() => undefined);
  }
}
