import type pg from 'pg';
import { TenantryError } from '../errors.js';
import type { QueryInput, TenantDb } from '../session/index.js';

/**
 * Where integrations find the tenant of the moment: `tenantry` itself (its `db()` answers the
 * handle of the current `withTenant` context and throws `TENANTRY_ERR_NO_TENANT` outside one).
 */
export interface TenantDbSource {
  /** The tenant-scoped handle of the current context. */
  db(): TenantDb;
}

/** What a driver may ask of a transaction when it begins (`BEGIN ISOLATION LEVEL …` and the like). */
export interface TransactionModes {
  /**
   * `serializable`, `repeatable read`, `read committed` or `read uncommitted`. With the `app`
   * identity only the level in effect can be asked for (see {@link HeldTransaction.begin}).
   */
  readonly isolationLevel?: string;
  /** `read only` (always possible) or `read write` (not for a read-only handle). */
  readonly accessMode?: 'read only' | 'read write';
  /** `DEFERRABLE` / `NOT DEFERRABLE`: not with the `app` identity. */
  readonly deferrable?: boolean;
}

/** Thrown into the transaction body to make the tenant transaction roll back. */
const ROLLBACK = Symbol('rollback');

/** How the held body is ended. */
interface Settle {
  resolve(): void;
  reject(reason: unknown): void;
}

/**
 * A tenant transaction (`TenantDb.transaction`) held open between separate begin and
 * commit/rollback calls, for drivers that work that way (Kysely, drizzle, pg-style clients).
 * Every statement goes to the same connection; the tenant setting rides with the first one.
 */
export class HeldTransaction {
  /** The transaction's handle: its statements share one connection. */
  readonly tx: TenantDb;
  readonly #settle: Settle;
  readonly #done: Promise<void>;
  #finished = false;

  private constructor(tx: TenantDb, settle: Settle, done: Promise<void>) {
    this.tx = tx;
    this.#settle = settle;
    this.#done = done;
  }

  /**
   * Begins a transaction on `db` and returns once its connection is checked out. `modes` become
   * a `SET TRANSACTION` that rides with the transaction's first round trip. PostgreSQL takes a
   * new isolation level, `DEFERRABLE` or `READ WRITE` only before the first query, and with the
   * `app` identity tenantry's own setting is that query: what comes too late is refused with
   * `TENANTRY_ERR_INVALID_ARGUMENT` (and the transaction rolled back).
   */
  static async begin(db: TenantDb, modes: TransactionModes = {}): Promise<HeldTransaction> {
    const settle: Settle = { resolve: () => undefined, reject: () => undefined };
    const body = new Promise<void>((resolve, reject) => Object.assign(settle, { resolve, reject }));
    let opened: (tx: TenantDb) => void = () => undefined;
    const started = new Promise<TenantDb>((resolve) => (opened = resolve));
    const done = db.transaction(async (tx) => {
      opened(tx);
      await body;
    });
    // The body only ends when commit() or rollback() says so: until then, wait for it to start
    // (or for the transaction to fail before it does, e.g. a checkout timeout).
    const tx = await new Promise<TenantDb>((resolve, reject) => {
      void started.then(resolve);
      done.catch(reject);
    });
    const held = new HeldTransaction(tx, settle, done);
    try {
      await applyModes(tx, modes);
    } catch (error) {
      await held.rollback();
      throw error;
    }
    return held;
  }

  /** Whether commit() or rollback() has been called. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Runs a statement in the transaction. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.tx.query<R>(input, values);
  }

  /** Commits (a no-op once finished); rejects with PostgreSQL's error when COMMIT fails. */
  async commit(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#settle.resolve();
    await this.#done;
  }

  /** Rolls back (a no-op once finished). */
  async rollback(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    this.#settle.reject(ROLLBACK);
    await this.#done.catch((error: unknown) => {
      if (error !== ROLLBACK) throw error;
    });
  }
}

const LEVELS = new Set(['serializable', 'repeatable read', 'read committed', 'read uncommitted']);

/** The `SET TRANSACTION …` clause for `modes`, or undefined when nothing is asked. */
function modeClause(modes: TransactionModes): string | undefined {
  const parts: string[] = [];
  if (modes.isolationLevel !== undefined) {
    const level = modes.isolationLevel.toLowerCase().replace(/\s+/g, ' ');
    if (!LEVELS.has(level)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'isolation level',
        problem: `PostgreSQL has no isolation level ${modes.isolationLevel}`,
      });
    }
    // PostgreSQL runs read uncommitted as read committed (and refuses to switch between them late).
    parts.push(`ISOLATION LEVEL ${level === 'read uncommitted' ? 'read committed' : level}`);
  }
  if (modes.accessMode !== undefined) {
    if (modes.accessMode !== 'read only' && modes.accessMode !== 'read write') {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'access mode',
        problem: `expected read only or read write, not ${String(modes.accessMode)}`,
      });
    }
    parts.push(modes.accessMode);
  }
  if (modes.deferrable !== undefined) parts.push(modes.deferrable ? 'DEFERRABLE' : 'NOT DEFERRABLE');
  return parts.length > 0 ? `SET TRANSACTION ${parts.join(' ')}` : undefined;
}

/**
 * Applies `modes` as the transaction's first statement of the caller's. PostgreSQL accepts an
 * isolation level (other than the one in effect), DEFERRABLE and READ WRITE only before the
 * transaction's first query; with the `app` identity the tenant setting is that query, so
 * those are refused there with `TENANTRY_ERR_INVALID_ARGUMENT` (READ ONLY always works).
 */
async function applyModes(tx: TenantDb, modes: TransactionModes): Promise<void> {
  const clause = modeClause(modes);
  if (clause === undefined) return;
  try {
    await tx.query(clause);
  } catch (error) {
    if ((error as { code?: unknown }).code !== '25001') throw error;
    throw new TenantryError(
      'INVALID_ARGUMENT',
      {
        what: 'transaction mode',
        problem: `${clause} came too late (${(error as Error).message}): tenantry's own setting is this transaction's first statement. Ask for the isolation level in effect, set default_transaction_isolation for the role or database, or use withTenant's identity: 'tenant'; a read-only handle cannot ask for read write`,
      },
      { cause: error },
    );
  }
}
