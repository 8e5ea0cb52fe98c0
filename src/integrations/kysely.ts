import type * as KyselyModule from 'kysely';
import type {
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  QueryCompiler,
  TransactionSettings,
} from 'kysely';
import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { TenantDbSource } from './held-transaction.js';
import { TenantryConnection } from './kysely-connection.js';

// kysely is optional: tenantry's main entry must load without it, and Kysely's dialect API is
// synchronous, so its PostgreSQL parts are looked up once, here, when the package is present.
let unavailable: unknown;
const kysely: typeof KyselyModule | undefined = await import('kysely').catch((error: unknown) => {
  unavailable = error;
  return undefined;
});

function kyselyParts(): typeof KyselyModule {
  if (kysely) return kysely;
  throw new TenantryError(
    'CONFIG',
    { problem: 'TenantryDialect needs the kysely package (npm install kysely), which could not be loaded' },
    { cause: unavailable },
  );
}

/** Configuration of {@link TenantryDialect} and {@link TenantryDriver}. */
export interface TenantryDialectConfig {
  /**
   * Where the current tenant's handle comes from at query time: your `tenantry` instance
   * (`tenantry.db()`), so one Kysely instance serves every tenant.
   */
  readonly tenantry: TenantDbSource;
}

/**
 * A Kysely dialect that runs every query as the tenant of the current `withTenant` context:
 * kysely's PostgreSQL adapter, introspector and query compiler over a {@link TenantryDriver}.
 *
 * ```ts
 * const db = new Kysely<Database>({ dialect: new TenantryDialect({ tenantry }) });
 * await tenantry.withTenant('HomeDepot', () => db.selectFrom('customer').selectAll().execute());
 * ```
 *
 * Queries outside a tenant context fail with `TENANTRY_ERR_NO_TENANT`. `db.destroy()` leaves
 * `tenantry` open (close it yourself). Needs the `kysely` package.
 */
export class TenantryDialect implements Dialect {
  readonly #config: TenantryDialectConfig;

  /** @param config where the current tenant comes from. */
  constructor(config: TenantryDialectConfig) {
    this.#config = config;
  }

  /** A {@link TenantryDriver}. */
  createDriver(): Driver {
    return new TenantryDriver(this.#config);
  }

  /** kysely's PostgreSQL query compiler. */
  createQueryCompiler(): QueryCompiler {
    return new (kyselyParts().PostgresQueryCompiler)();
  }

  /** kysely's PostgreSQL adapter. */
  createAdapter(): DialectAdapter {
    return new (kyselyParts().PostgresAdapter)();
  }

  /** kysely's PostgreSQL introspector (it sees what the current tenant sees). */
  createIntrospector(db: Parameters<Dialect['createIntrospector']>[0]): DatabaseIntrospector {
    return new (kyselyParts().PostgresIntrospector)(db);
  }
}

/**
 * A Kysely driver over tenantry: each connection is the tenant handle of the context it is
 * acquired in (`tenantry.db()`); a Kysely transaction is that handle's transaction, on one
 * backend connection, with savepoints for `trx.savepoint()`. With `withTenant`'s default `app`
 * identity, an isolation level can be chosen only when it is the one in effect anyway
 * (`TENANTRY_ERR_INVALID_ARGUMENT` otherwise); with `identity: 'tenant'`, any. `read only` always
 * can.
 */
export class TenantryDriver implements Driver {
  readonly #source: TenantDbSource;

  /** @param config where the current tenant comes from. */
  constructor(config: TenantryDialectConfig) {
    this.#source = config.tenantry;
  }

  /** Nothing to set up: tenantry owns the connections. */
  init(): Promise<void> {
    return Promise.resolve();
  }

  /** The current context's tenant handle; `TENANTRY_ERR_NO_TENANT` outside a context. */
  acquireConnection(): Promise<DatabaseConnection> {
    return new Promise((resolve) => resolve(new TenantryConnection(this.#source.db())));
  }

  /** Begins the tenant handle's transaction on one backend connection. */
  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return own(connection).begin(settings);
  }

  /** Commits it. */
  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return own(connection).commit();
  }

  /** Rolls it back. */
  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return own(connection).rollback();
  }

  /** `SAVEPOINT name` in the open transaction. */
  async savepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await own(connection).db.query(`SAVEPOINT ${pg.escapeIdentifier(savepointName)}`);
  }

  /** `ROLLBACK TO SAVEPOINT name`. */
  async rollbackToSavepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await own(connection).db.query(`ROLLBACK TO SAVEPOINT ${pg.escapeIdentifier(savepointName)}`);
  }

  /** `RELEASE SAVEPOINT name`. */
  async releaseSavepoint(connection: DatabaseConnection, savepointName: string): Promise<void> {
    await own(connection).db.query(`RELEASE SAVEPOINT ${pg.escapeIdentifier(savepointName)}`);
  }

  /** Rolls back a transaction the caller left open; the backend goes back to tenantry's pool. */
  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return own(connection).rollback();
  }

  /** Nothing to close: `tenantry.close()` closes the connections. */
  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

function own(connection: DatabaseConnection): TenantryConnection {
  if (connection instanceof TenantryConnection) return connection;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'connection',
    problem: 'TenantryDriver was handed a connection it did not create',
  });
}
