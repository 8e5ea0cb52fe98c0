import type pg from 'pg';
import type { Tenant } from '../catalog/index.js';
import { runInTenantContext, tryGetTenantContext } from '../context/index.js';
import {
  connectionLost,
  isConnectionError,
  isRetryableRead,
  mayLeaveState,
  type Lease,
  type PoolTarget,
} from '../pool/index.js';
import { TenantryError, fromDatabaseError, isTenantryError } from '../errors.js';
import { isStalePlan } from './statement-cache.js';
import { runWithPrelude, type PreludeStatement } from './tenant-query.js';

/** Query input accepted by {@link TenantDb.query}: SQL text or a node-postgres query config. */
export type QueryInput = string | pg.QueryConfig;

/**
 * A tenant-scoped database handle: every statement runs as its tenant, and row-level
 * security in PostgreSQL filters and checks its rows. Results are node-postgres results.
 */
export interface TenantDb {
  /** The tenant this handle acts for. */
  readonly tenant: Tenant;
  /**
   * Runs one statement (or, without values, a multi-statement script whose last result is
   * returned) as the tenant. Outside a transaction this is one round trip.
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
  /**
   * Runs `fn` in a transaction as the tenant: committed when `fn` resolves, rolled back when
   * it throws. Nested calls use savepoints.
   */
  transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T>;
}

/** Checks a tenant may be used right now (state and instance); throws the matching error. */
export type TenantGate = (tenant: Tenant) => void;

function toConfig(input: QueryInput, values: readonly unknown[] | undefined): pg.QueryConfig {
  const config: pg.QueryConfig = typeof input === 'string' ? { text: input } : { ...input };
  if (values !== undefined) config.values = [...values];
  return config;
}

/**
 * How statements of one tenant reach PostgreSQL: the pool to check out from and the statements
 * (of tenantry's own making) that must precede them in the same transaction.
 */
export interface TenantRoute {
  readonly target: PoolTarget;
  /** e.g. the transaction-local tenant setting and search_path; empty for per-tenant roles. */
  readonly prelude: readonly PreludeStatement[];
  /** The schema the statements run in (for backend recycling), when not the shared one. */
  readonly schema?: string;
  /** Whether the SQL comes from the tenant itself: then the connection is always reset. */
  readonly untrusted?: boolean;
}

/** Checks out connections for a route. */
export type Acquire = (target: PoolTarget) => Promise<Lease>;

/** Whether `error` means the connection died: a raw connection error, or one already wrapped. */
function isLost(error: unknown): boolean {
  return isTenantryError(error, 'CONNECTION_LOST') || isConnectionError(error);
}

/**
 * A connection error as `TENANTRY_ERR_CONNECTION_LOST` (the original, with its SQLSTATE, as
 * `cause`); any other error as {@link fromDatabaseError} maps it.
 */
function toTenantryError(error: unknown): unknown {
  if (isTenantryError(error)) return error;
  return isConnectionError(error) ? connectionLost(error) : fromDatabaseError(error);
}

function sqlOf(config: pg.QueryConfig): string {
  return typeof config.text === 'string' ? config.text : '';
}

/** A transaction in progress on one client. */
class Transaction implements TenantDb {
  readonly tenant: Tenant;
  readonly #lease: Lease;
  readonly #route: TenantRoute;
  #begun = false;
  #savepoints = 0;
  /** Set once the transaction ended: a handle kept past it must not reach the connection again. */
  #done = false;

  constructor(tenant: Tenant, lease: Lease, route: TenantRoute) {
    this.tenant = tenant;
    this.#lease = lease;
    this.#route = route;
  }

  get begun(): boolean {
    return this.#begun;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    this.#checkOpen();
    const config = toConfig(input, values);
    if (this.#route.untrusted || mayLeaveState(sqlOf(config))) this.#lease.markDirty();
    try {
      if (this.#begun) return await this.#lease.client.query<R>(config);
      this.#begun = true;
      // The first statement, sent with BEGIN and the prelude, is prepared once per connection
      // (application code only); a plan outdated by DDL fails it before anything happened.
      const prelude = [{ text: 'BEGIN' }, ...this.#route.prelude];
      const autoPrepare = !this.#route.untrusted;
      try {
        return await runWithPrelude<R>(this.#lease.client, prelude, config, autoPrepare);
      } catch (error) {
        if (!autoPrepare || !isStalePlan(error)) throw error;
        await this.#lease.client.query('ROLLBACK');
        return await runWithPrelude<R>(this.#lease.client, prelude, config, autoPrepare);
      }
    } catch (error) {
      if (isConnectionError(error)) this.#lease.markBroken();
      throw toTenantryError(error);
    }
  }

  async transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T> {
    this.#checkOpen();
    const name = `tenantry_sp_${++this.#savepoints}`;
    await this.query(`SAVEPOINT ${name}`);
    try {
      const result = await runInTenantContext(
        { ...tryGetTenantContext(), tenant: this.tenant, transaction: this },
        // awaited inside the context, so a lazy thenable (a query builder) runs as this tenant
        async () => await fn(this),
      );
      await this.#lease.client.query(`RELEASE SAVEPOINT ${name}`).catch((error: unknown) => {
        if (isConnectionError(error)) this.#lease.markBroken();
        throw toTenantryError(error);
      });
      return result;
    } catch (error) {
      await this.#lease.client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw error;
    }
  }

  /** Throws `TENANTRY_ERR_CLOSED` once the transaction has ended (its connection serves others). */
  #checkOpen(): void {
    if (this.#done) {
      throw new TenantryError(
        'CLOSED',
        {},
        { cause: new Error('this transaction handle was used after its transaction ended') },
      );
    }
  }

  async finish(commit: boolean): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (!this.#begun) return;
    try {
      await this.#lease.client.query(commit ? 'COMMIT' : 'ROLLBACK');
    } catch (error) {
      if (isConnectionError(error)) this.#lease.markBroken();
      throw toTenantryError(error);
    }
  }
}

/** The tenant-scoped handle handed to `withTenant` callbacks. */
export class PooledTenantDb implements TenantDb {
  readonly tenant: Tenant;
  readonly #route: TenantRoute;
  readonly #acquire: Acquire;
  readonly #gate: TenantGate;

  constructor(tenant: Tenant, route: TenantRoute, acquire: Acquire, gate: TenantGate) {
    this.tenant = tenant;
    this.#route = route;
    this.#acquire = acquire;
    this.#gate = gate;
  }

  async #lease(): Promise<Lease> {
    const lease = await this.#acquire(this.#route.target);
    if (this.#route.schema) lease.noteSchema(this.#route.schema);
    if (this.#route.untrusted) lease.markDirty();
    return lease;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    // Inside db.transaction() of the same tenant, statements join that transaction.
    const open = tryGetTenantContext()?.transaction;
    if (open instanceof Transaction && open.tenant.id === this.tenant.id) return open.query<R>(input, values);
    this.#gate(this.tenant);
    const config = toConfig(input, values);
    const text = sqlOf(config);
    for (let attempt = 1; ; attempt++) {
      const lease = await this.#lease();
      if (mayLeaveState(text)) lease.markDirty();
      try {
        return await runWithPrelude<R>(lease.client, this.#route.prelude, config, !this.#route.untrusted);
      } catch (error) {
        // A prepared plan outdated by DDL failed before doing anything: run it once more, parsed anew.
        if (isStalePlan(error) && attempt === 1) continue;
        if (!isConnectionError(error)) throw fromDatabaseError(error);
        lease.markBroken();
        // Retry once only a read that cannot have written anything.
        if (attempt > 1 || !isRetryableRead(text)) throw toTenantryError(error);
      } finally {
        lease.release();
      }
    }
  }

  async transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T> {
    const open = tryGetTenantContext()?.transaction;
    if (open instanceof Transaction && open.tenant.id === this.tenant.id) return open.transaction(fn);
    this.#gate(this.tenant);
    const lease = await this.#lease();
    const tx = new Transaction(this.tenant, lease, this.#route);
    try {
      const result = await runInTenantContext(
        { ...tryGetTenantContext(), tenant: this.tenant, transaction: tx },
        async () => await fn(tx),
      );
      await tx.finish(true);
      return result;
    } catch (error) {
      if (isLost(error)) lease.markBroken();
      await tx.finish(false).catch(() => undefined);
      throw isConnectionError(error) ? toTenantryError(error) : error;
    } finally {
      lease.release();
    }
  }
}
