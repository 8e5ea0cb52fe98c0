import pg from 'pg';
import type { Tenant } from '../catalog/index.js';
import { runInTenantContext, tryGetTenantContext } from '../context/index.js';
import { runWithPrelude } from './tenant-query.js';

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

/** The SQL that makes a transaction act for `tenant` (an integer, never user text). */
export function tenantSetting(tenant: Tenant): string {
  return `SELECT set_config('tenantry.tenant', '${Math.trunc(tenant.id)}', true)`;
}

function toConfig(input: QueryInput, values: readonly unknown[] | undefined): pg.QueryConfig {
  const config: pg.QueryConfig = typeof input === 'string' ? { text: input } : { ...input };
  if (values !== undefined) config.values = [...values];
  return config;
}

/** Returns a client to its pool, rolling back anything left open; destroys it if that fails. */
export async function releaseClean(client: pg.PoolClient): Promise<void> {
  const status = client.getTransactionStatus?.();
  if (status === 'T' || status === 'E') {
    try {
      await client.query('ROLLBACK');
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      return;
    }
  }
  client.release();
}

/** A transaction in progress on one client. */
class Transaction implements TenantDb {
  readonly tenant: Tenant;
  readonly #client: pg.PoolClient;
  #begun = false;
  #savepoints = 0;

  constructor(tenant: Tenant, client: pg.PoolClient) {
    this.tenant = tenant;
    this.#client = client;
  }

  get begun(): boolean {
    return this.#begun;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    const config = toConfig(input, values);
    if (this.#begun) return this.#client.query<R>(config);
    this.#begun = true;
    return runWithPrelude<R>(this.#client, ['BEGIN', tenantSetting(this.tenant)], config);
  }

  async transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T> {
    const name = `tenantry_sp_${++this.#savepoints}`;
    await this.query(`SAVEPOINT ${name}`);
    try {
      const result = await runInTenantContext(
        { ...tryGetTenantContext(), tenant: this.tenant, transaction: this },
        () => fn(this),
      );
      await this.#client.query(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (error) {
      await this.#client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw error;
    }
  }

  async finish(commit: boolean): Promise<void> {
    if (!this.#begun) return;
    await this.#client.query(commit ? 'COMMIT' : 'ROLLBACK');
  }
}

/** The tenant-scoped handle handed to `withTenant` callbacks. */
export class PooledTenantDb implements TenantDb {
  readonly tenant: Tenant;
  readonly #pool: pg.Pool;
  readonly #gate: TenantGate;

  constructor(tenant: Tenant, pool: pg.Pool, gate: TenantGate) {
    this.tenant = tenant;
    this.#pool = pool;
    this.#gate = gate;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    input: QueryInput,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    // Inside db.transaction() of the same tenant, statements join that transaction.
    const open = tryGetTenantContext()?.transaction;
    if (open instanceof Transaction && open.tenant.id === this.tenant.id) return open.query<R>(input, values);
    this.#gate(this.tenant);
    const client = await this.#pool.connect();
    try {
      return await runWithPrelude<R>(client, [tenantSetting(this.tenant)], toConfig(input, values));
    } finally {
      await releaseClean(client);
    }
  }

  async transaction<T>(fn: (tx: TenantDb) => Promise<T>): Promise<T> {
    const open = tryGetTenantContext()?.transaction;
    if (open instanceof Transaction && open.tenant.id === this.tenant.id) return open.transaction(fn);
    this.#gate(this.tenant);
    const client = await this.#pool.connect();
    const tx = new Transaction(this.tenant, client);
    try {
      const result = await runInTenantContext(
        { ...tryGetTenantContext(), tenant: this.tenant, transaction: tx },
        () => fn(tx),
      );
      await tx.finish(true);
      return result;
    } catch (error) {
      await tx.finish(false).catch(() => undefined);
      throw error;
    } finally {
      await releaseClean(client);
    }
  }
}
