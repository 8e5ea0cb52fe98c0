import { EventEmitter } from 'node:events';
import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { QueryInput, TenantDb } from '../session/index.js';
import { HeldTransaction, type TransactionModes } from './held-transaction.js';

/** node-postgres's callback form of `query`. */
export type QueryCallback = (error: Error | null, result?: pg.QueryResult) => void;

/**
 * Serves node-postgres's `query(text | config, values?, callback?)` with `run`: a promise
 * without a callback, else the callback. A submittable (pg-cursor, pg-query-stream), which pg
 * would hand back at once, is refused at once (thrown): tenantry does not lend out connections.
 */
export function pgQuery(
  run: (input: QueryInput, values: readonly unknown[] | undefined) => Promise<pg.QueryResult>,
  args: readonly unknown[],
): Promise<pg.QueryResult> | undefined {
  const [input, second, third] = args;
  const callback = [second, third].find((arg): arg is QueryCallback => typeof arg === 'function');
  const values = Array.isArray(second) ? (second as unknown[]) : undefined;
  const checked = checkInput(input);
  const promise = new Promise<pg.QueryResult>((resolve) => resolve(run(checked, values)));
  if (!callback) return promise;
  promise.then(
    (result) => callback(null, result),
    (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
  );
  return undefined;
}

function checkInput(input: unknown): QueryInput {
  if (typeof input === 'string') return input;
  if (typeof input === 'object' && input !== null && !('submit' in input) && 'text' in input) {
    return input as pg.QueryConfig;
  }
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'query',
    problem:
      'expected SQL text or a query config; submittables (pg-cursor, pg-query-stream) need a connection of their own, which tenantry does not lend out: use DECLARE/FETCH in a transaction',
  });
}

const BEGIN = /^\s*(?:begin(?:\s+(?:work|transaction))?|start\s+transaction)\b([^;]*);?\s*$/i;
const COMMIT = /^\s*(?:commit|end)(?:\s+(?:work|transaction))?\s*;?\s*$/i;
const ROLLBACK = /^\s*(?:rollback|abort)(?:\s+(?:work|transaction))?\s*;?\s*$/i;
const MODE =
  /\s*(?:isolation\s+level\s+(serializable|repeatable\s+read|read\s+committed|read\s+uncommitted)|(read\s+only|read\s+write)|(not\s+)?deferrable)\s*,?/iy;

/** The transaction modes of a `BEGIN …` / `START TRANSACTION …` tail. */
function parseModes(tail: string): TransactionModes {
  let modes: TransactionModes = {};
  MODE.lastIndex = 0;
  let match: RegExpExecArray | null;
  while (MODE.lastIndex < tail.length && (match = MODE.exec(tail))) {
    const [, level, access, not] = match;
    const spaced = (text: string): string => text.toLowerCase().replace(/\s+/g, ' ');
    if (level) modes = { ...modes, isolationLevel: spaced(level) };
    else if (access) modes = { ...modes, accessMode: spaced(access) as 'read only' | 'read write' };
    else modes = { ...modes, deferrable: not === undefined };
  }
  if (tail.slice(MODE.lastIndex).trim() !== '') {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'transaction mode',
      problem: `cannot read "${tail.trim()}"`,
    });
  }
  return modes;
}

/** A result like the one node-postgres gives for a transaction-control statement. */
function controlResult(command: string): pg.QueryResult {
  return { command, rowCount: null, oid: 0, rows: [], fields: [] };
}

/**
 * The client `pool.connect()` answers: a transaction scope of one tenant (the one in context
 * when it was checked out), not a session. `BEGIN` (with its modes) … `COMMIT`/`ROLLBACK`
 * become that tenant's transaction on one backend connection; every other statement runs in
 * the open transaction, or else on its own as one round trip. Session state (`SET`, temporary
 * tables) does not outlive a transaction. Offers `query`, `release`, `escapeIdentifier` and
 * `escapeLiteral`.
 */
export class TenantryPoolClient extends EventEmitter {
  readonly #db: TenantDb;
  #held: HeldTransaction | undefined;

  /** @param db the tenant handle this client's statements run on. */
  constructor(db: TenantDb) {
    super();
    this.#db = db;
  }

  /** node-postgres's `query`, as the tenant. */
  query(...args: unknown[]): Promise<pg.QueryResult> | undefined {
    return pgQuery((input, values) => this.#run(input, values), args);
  }

  async #run(input: QueryInput, values: readonly unknown[] | undefined): Promise<pg.QueryResult> {
    const text = typeof input === 'string' ? input : input.text;
    const begin = BEGIN.exec(text);
    if (begin) {
      // Like PostgreSQL, BEGIN inside a transaction changes nothing.
      if (!this.#held) this.#held = await HeldTransaction.begin(this.#db, parseModes(begin[1] ?? ''));
      return controlResult('BEGIN');
    }
    const commit = COMMIT.test(text);
    if (commit || ROLLBACK.test(text)) {
      const held = this.#held;
      this.#held = undefined;
      await (commit ? held?.commit() : held?.rollback());
      return controlResult(commit ? 'COMMIT' : 'ROLLBACK');
    }
    return (this.#held?.tx ?? this.#db).query(input, values);
  }

  /**
   * Gives the client back; a transaction left open is rolled back. (node-postgres's `release(err)`
   * destroys a broken client; tenantry's pool checks its backends itself.)
   */
  release(_error?: Error | boolean): void {
    const held = this.#held;
    this.#held = undefined;
    void held?.rollback().catch(() => undefined);
  }

  /** `pg.escapeIdentifier`. */
  escapeIdentifier(name: string): string {
    return pg.escapeIdentifier(name);
  }

  /** `pg.escapeLiteral`. */
  escapeLiteral(value: string): string {
    return pg.escapeLiteral(value);
  }
}
