import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { TenantDbSource } from './held-transaction.js';
import { TenantryPoolClient, pgQuery } from './pg-pool-client.js';

type ConnectCallback = (
  error: Error | undefined,
  client: pg.PoolClient | undefined,
  done: () => void,
) => void;

/**
 * A `pg.Pool` (a real subclass, so `instanceof pg.Pool` holds) whose every statement runs as
 * the tenant of the current context: `query()` on `tenantry.db()` at call time, `connect()` a
 * {@link TenantryPoolClient} of the tenant in context at checkout. It opens no connections of
 * its own; `end()` only stops it (close `tenantry` yourself).
 */
class TenantryPgPool extends pg.Pool {
  readonly #source: TenantDbSource;

  constructor(source: TenantDbSource) {
    super({ max: 1 });
    this.#source = source;
  }

  // `never`: this one implementation serves every overload pg's typings declare for Pool.
  override query(...args: unknown[]): never {
    return pgQuery((input, values) => {
      this.#checkOpen();
      return this.#source.db().query(input, values);
    }, args) as never;
  }

  override connect(...args: unknown[]): never {
    const callback = args[0] as ConnectCallback | undefined;
    const client = new Promise<pg.PoolClient>((resolve) => {
      this.#checkOpen();
      // Not a pg.Client: it offers query, release, escapeIdentifier and escapeLiteral.
      resolve(new TenantryPoolClient(this.#source.db()) as unknown as pg.PoolClient);
    });
    if (typeof callback !== 'function') return client as never;
    client.then(
      (c) => callback(undefined, c, () => c.release()),
      (error: unknown) =>
        callback(error instanceof Error ? error : new Error(String(error)), undefined, () => undefined),
    );
    return undefined as never;
  }

  #checkOpen(): void {
    if (this.ending) {
      throw new TenantryError('INVALID_ARGUMENT', { what: 'pool', problem: 'end() was called on it' });
    }
  }
}

/**
 * A node-postgres pool over `tenantry`: every statement runs as the tenant of the current
 * `withTenant` context (`TENANTRY_ERR_NO_TENANT` outside one), so code and libraries written
 * for `pg.Pool` — drizzle's node-postgres driver, kysely's `PostgresDialect`, your own
 * functions — serve every tenant from one instance. Transactions (`BEGIN` … `COMMIT` on a
 * checked-out client, as drizzle's `db.transaction()` sends them) become the tenant's
 * transactions on one backend connection.
 *
 * ```ts
 * const db = drizzle(tenantryPgPool(tenantry));
 * await tenantry.withTenant('HomeDepot', () => db.select().from(customer).execute());
 * ```
 *
 * Unlike a real pool, a checked-out client is a transaction scope, not a session: `SET` and
 * temporary tables do not outlive a transaction, and cursors and `COPY` streams
 * (submittables) are refused.
 */
export function tenantryPgPool(tenantry: TenantDbSource): pg.Pool {
  return new TenantryPgPool(tenantry);
}
