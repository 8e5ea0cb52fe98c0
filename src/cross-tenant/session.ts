import type pg from 'pg';
import { fromDatabaseError } from '../errors.js';
import { isConnectionError, type Lease } from '../pool/index.js';
import { runWithPrelude, type PreludeStatement } from '../session/index.js';

/** A result of {@link ScanSession.run}: rows as arrays, in column order. */
export interface ArrayResult {
  readonly fields: readonly pg.FieldDef[];
  readonly rows: unknown[][];
}

/** Options of {@link ScanSession.run}. */
export interface RunOptions {
  /** Statements of tenantry's own making (a tenant's settings) that run first, in the same round trip. */
  readonly settings?: readonly PreludeStatement[];
  readonly values?: readonly unknown[];
  /**
   * Run inside a savepoint, so that a failure leaves the session — and the other cursors it
   * holds — usable (`onError: 'partial'`).
   */
  readonly guard?: boolean;
}

/**
 * One connection of a cross-tenant scan in one READ ONLY transaction. It holds the cursors of one
 * or more streams; every statement carries the settings of the tenant it is for, so cursors of
 * different tenants can share the connection (a cursor's FETCH evaluates under the settings of
 * that FETCH, which are always its own tenant's). Each call is one round trip: `BEGIN`, the
 * release of the previous savepoint, a new savepoint and the settings ride ahead of the statement
 * under one Sync. Statements always use the extended protocol, so a query text holding several
 * statements is refused by PostgreSQL.
 */
export class ScanSession {
  readonly #lease: Lease;
  #begun = false;
  #pendingRelease: string | undefined;
  #savepoints = 0;
  #cursors = 0;
  #usable = true;
  #closed = false;
  #toClose: string[] = [];
  #last: Promise<unknown> = Promise.resolve();

  constructor(lease: Lease) {
    this.#lease = lease;
    // The scan's SQL comes from outside tenantry: reset the connection before anyone reuses it.
    lease.markDirty();
  }

  /** Notes that this connection served a schema tenant's schema (backend recycling). */
  noteSchema(schema: string): void {
    this.#lease.noteSchema(schema);
  }

  /** A cursor name unique in this session. */
  cursorName(): string {
    return `tenantry_scan_${++this.#cursors}`;
  }

  /** Closes cursor `name` with the next statement (no round trip of its own). */
  deferClose(name: string): void {
    this.#toClose.push(name);
  }

  /**
   * Runs one statement; throws PostgreSQL's error (a tenantry error when it is one of ours).
   * Calls made while another is in flight wait for it (a stream may prefetch while another
   * stream of the same session reads).
   */
  run(text: string, options: RunOptions = {}): Promise<ArrayResult> {
    const result = this.#last.then(() => this.#run(text, options));
    this.#last = result.catch(() => undefined);
    return result;
  }

  async #run(text: string, options: RunOptions): Promise<ArrayResult> {
    if (!this.#usable || this.#closed) throw new Error('tenantry: scan session is no longer usable');
    const prelude: PreludeStatement[] = [];
    if (!this.#begun) prelude.push({ text: 'BEGIN READ ONLY' });
    if (this.#pendingRelease) prelude.push({ text: `RELEASE SAVEPOINT ${this.#pendingRelease}` });
    for (const name of this.#toClose.splice(0)) prelude.push({ text: `CLOSE ${name}` });
    const savepoint = options.guard === true ? `tenantry_scan_sp_${++this.#savepoints}` : undefined;
    if (savepoint) prelude.push({ text: `SAVEPOINT ${savepoint}` });
    if (options.settings) prelude.push(...options.settings);
    this.#begun = true;
    this.#pendingRelease = undefined;
    const config = {
      text,
      values: options.values === undefined ? [] : [...options.values],
      rowMode: 'array',
      queryMode: 'extended',
    } as pg.QueryConfig;
    try {
      const result = await runWithPrelude<pg.QueryResultRow>(this.#lease.client, prelude, config);
      this.#pendingRelease = savepoint;
      return { fields: result.fields, rows: result.rows as unknown as unknown[][] };
    } catch (error) {
      if (isConnectionError(error)) {
        this.#usable = false;
        this.#lease.markBroken();
      } else if (!savepoint) {
        this.#usable = false;
      } else {
        await this.#lease.client
          .query(`ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`)
          .catch(() => {
            this.#usable = false;
          });
      }
      throw fromDatabaseError(error);
    }
  }

  /** Ends the transaction (closing its cursors) and returns the connection; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#last;
    try {
      if (this.#begun && this.#usable) await this.#lease.client.query('ROLLBACK');
    } catch {
      this.#lease.markBroken();
    } finally {
      this.#lease.release();
    }
  }
}
