import pg from 'pg';
import type { CatalogCache, RegisteredTable } from '../catalog/index.js';
import { TenantryError, fromDatabaseError } from '../errors.js';
import { provisionTableForSchemas, type DatabaseProvisioner } from '../isolation/index.js';

const QUALIFIED = /^(?:("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)$/;

/** Declares tables multi-tenant or shared (the TS face of `tenantry.multi_tenant()` / `tenantry.shared()`). */
export class TableRegistry {
  readonly #pool: pg.Pool;
  readonly #cache: CatalogCache;

  readonly #databases: DatabaseProvisioner;

  constructor(pool: pg.Pool, cache: CatalogCache, databases: DatabaseProvisioner) {
    this.#databases = databases;
    this.#pool = pool;
    this.#cache = cache;
  }

  /**
   * Makes `schema.table` multi-tenant: checks the tenant column leads the primary key and that
   * no unique constraint or foreign key leaves it out, then forces row-level security with one
   * policy. Throws `TENANTRY_ERR_TABLE_SHAPE` (with the fix) or `TENANTRY_ERR_TABLE_NOT_FOUND`.
   */
  async multiTenant(table: string, options: { tenantColumn?: string } = {}): Promise<RegisteredTable> {
    checkName(table);
    const column = options.tenantColumn ?? 'tenant_id';
    await this.#call(table, async (client) => {
      await client.query('SELECT tenantry.multi_tenant($1::regclass, $2)', [table, column]);
      await client.query('SELECT tenantry.add_allocation_policy($1::regclass)', [table]);
      await provisionTableForSchemas(client, table, column);
    });
    return this.#registered(table);
  }

  /** Makes `schema.table` shared: every tenant reads it; `writable` lets tenants write it too. */
  async shared(table: string, options: { writable?: boolean } = {}): Promise<RegisteredTable> {
    checkName(table);
    await this.#call(table, (client) =>
      client.query('SELECT tenantry.shared($1::regclass, $2)', [table, options.writable ?? false]),
    );
    return this.#registered(table);
  }

  /** Every registered table, from the catalog cache. */
  list(): readonly RegisteredTable[] {
    return this.#cache.tables();
  }

  /** Runs `work` in one transaction, mapping tenantry's SQL errors to TenantryErrors. */
  async #call(table: string, work: (client: pg.PoolClient) => Promise<unknown>): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (error instanceof pg.DatabaseError && error.code === '42P01') {
        throw new TenantryError('TABLE_NOT_FOUND', { table }, { cause: error });
      }
      const mapped = fromDatabaseError(error);
      if (mapped instanceof TenantryError && error instanceof pg.DatabaseError && error.hint) {
        Object.defineProperty(mapped, 'message', { value: `${mapped.message} ${error.hint}` });
      }
      throw mapped;
    } finally {
      client.release();
    }
    await this.#cache.reload();
    // Database tenants live elsewhere: bring each up to the registry (rerunnable on failure).
    await this.#databases.syncAll();
  }

  async #registered(table: string): Promise<RegisteredTable> {
    const { rows } = await this.#pool.query<{ schema_name: string; table_name: string }>(
      `SELECT n.nspname AS schema_name, c.relname AS table_name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::regclass`,
      [table],
    );
    const row = rows[0];
    const found = this.#cache
      .tables()
      .find((t) => t.schema === row?.schema_name && t.table === row?.table_name);
    if (!found) throw new TenantryError('TABLE_NOT_FOUND', { table });
    return found;
  }
}

function checkName(table: string): void {
  if (typeof table !== 'string' || !QUALIFIED.test(table)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'table name',
      problem: `${JSON.stringify(table)} is not a table name such as public.customer`,
    });
  }
}
