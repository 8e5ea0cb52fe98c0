import pg from 'pg';
import { inTransaction, type CatalogRoles } from '../catalog/index.js';
import { TenantryError } from '../errors.js';

/** What {@link Segments.migrateDefault} did. */
export interface MigrateDefaultResult {
  /** Rows moved, per tenant name. */
  readonly moved: Readonly<Record<string, number>>;
  /** Rows left in the default segment because their tenant column names no known tenant. */
  readonly unknown: readonly { readonly value: string; readonly rows: number }[];
  /** Batches committed. */
  readonly batches: number;
}

interface TableRef {
  readonly schema: string;
  readonly table: string;
  readonly column: string;
  readonly qualified: string;
}

/**
 * Data segments (seed 004): allocating and deallocating a tenant's segment of a table, and
 * moving rows from the default tenant's segment to their tenants.
 */
export class Segments {
  readonly #pool: pg.Pool;
  readonly #roles: CatalogRoles;

  constructor(pool: pg.Pool, roles: CatalogRoles) {
    this.#pool = pool;
    this.#roles = roles;
  }

  async #table(table: string): Promise<TableRef> {
    const { rows } = await this.#pool.query<{ schema: string; table: string; column: string }>(
      `SELECT r.schema_name AS schema, r.table_name AS table, r.tenant_column AS column
       FROM tenantry.registered_table r
       WHERE r.kind = 'multi_tenant' AND format('%I.%I', r.schema_name, r.table_name)::regclass = to_regclass($1)`,
      [table],
    );
    const row = rows[0];
    if (!row)
      throw new TenantryError('TABLE_SHAPE', { table, problem: 'it is not a registered multi-tenant table' });
    return { ...row, qualified: `${pg.escapeIdentifier(row.schema)}.${pg.escapeIdentifier(row.table)}` };
  }

  async #set(tenant: string, table: string, allocated: boolean): Promise<void> {
    const ref = await this.#table(table);
    const { rows } = await this.#pool.query<{ id: number }>(
      "SELECT id FROM tenantry.tenant WHERE (lower(name) = lower($1) OR id::text = $1) AND kind IN ('regular', 'default')",
      [tenant],
    );
    const id = rows[0]?.id;
    if (id === undefined) throw new TenantryError('TENANT_NOT_FOUND', { tenant });
    await this.#pool.query(
      `INSERT INTO tenantry.allocation (segment, schema_name, table_name, allocated) VALUES ($1, $2, $3, $4)
       ON CONFLICT (segment, schema_name, table_name) DO UPDATE SET allocated = EXCLUDED.allocated`,
      [id, ref.schema, ref.table, allocated],
    );
    // The policy's cheap form holds only while no regular segment of the table is deallocated.
    await this.#pool.query('SELECT tenantry.add_allocation_policy($1::regclass)', [ref.qualified]);
  }

  /** Allocates the tenant's segment of `table` (the default tenant's are unallocated until then). */
  allocate(tenant: string, table: string): Promise<void> {
    return this.#set(tenant, table, true);
  }

  /** Deallocates the tenant's segment of `table`: its rows stay, every access fails with `TENANTRY_ERR_NOT_ALLOCATED`. */
  deallocate(tenant: string, table: string): Promise<void> {
    return this.#set(tenant, table, false);
  }

  /**
   * Moves rows of `table` from the default segment to the tenant named in each row's `from`
   * column (seed 004's migration), as the maintenance identity, in batches of `batchSize`, each
   * batch its own transaction: interrupted, a rerun goes on where it stopped. Rows naming no
   * known tenant stay in place and are listed.
   */
  async migrateDefault(
    table: string,
    from: string,
    options: { batchSize?: number } = {},
  ): Promise<MigrateDefaultResult> {
    const ref = await this.#table(table);
    const batchSize = options.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'batch size',
        problem: 'expected a positive integer',
      });
    }
    const column = await this.#pool.query(
      'SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped',
      [ref.qualified, from],
    );
    if (!column.rowCount)
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'column',
        problem: `${table} has no column ${from}`,
      });
    const tenantCol = pg.escapeIdentifier(ref.column);
    const fromCol = pg.escapeIdentifier(from);
    const moved: Record<string, number> = {};
    let batches = 0;
    for (;;) {
      const client = await this.#pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(this.#roles.maint)}`);
        const { rows } = await client.query<{ name: string; n: string }>(
          `WITH batch AS (
             SELECT b.ctid AS row_id, t.id, t.name
             FROM ${ref.qualified} b
             JOIN tenantry.tenant t ON lower(t.name) = lower(b.${fromCol}::text) AND t.kind = 'regular'
               AND t.isolation = 'shared'
             WHERE b.${tenantCol} = 0
             LIMIT $1 FOR UPDATE OF b SKIP LOCKED),
           moved AS (
             UPDATE ${ref.qualified} b SET ${tenantCol} = batch.id FROM batch WHERE b.ctid = batch.row_id
             RETURNING batch.name)
           SELECT name, count(*) AS n FROM moved GROUP BY name`,
          [batchSize],
        );
        await client.query('COMMIT');
        if (rows.length === 0) break;
        batches++;
        for (const row of rows) moved[row.name] = (moved[row.name] ?? 0) + Number(row.n);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
    // As the maintenance role too: under FORCE ROW LEVEL SECURITY an operator that does not
    // bypass it would see no row and list nothing.
    const unknown = await inTransaction(
      this.#pool,
      async (client) => {
        await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(this.#roles.maint)}`);
        const { rows } = await client.query<{ value: string; rows: number }>(
          `SELECT coalesce(${fromCol}::text, '(null)') AS value, count(*)::int AS rows FROM ${ref.qualified}
           WHERE ${tenantCol} = 0 GROUP BY 1 ORDER BY 1`,
        );
        return rows;
      },
      'BEGIN READ ONLY',
    );
    return { moved, unknown, batches };
  }
}
