import pg from 'pg';
import { isTenantryError, type Tenantry } from '../../src/index.js';

/** Whether `error` asks for the write to be run again (the cut-over's fence, or a moved tenant). */
export function isRetryable(error: unknown): boolean {
  if (isTenantryError(error, 'TENANT_MOVED')) return true;
  const cause = error instanceof Error && 'cause' in error ? error.cause : undefined;
  return [error, cause].some((e) => e instanceof pg.DatabaseError && e.code === '40001');
}

/** A tenant writing steadily during a move: every acknowledged write is remembered. */
export class SteadyWriter {
  readonly inserted: number[] = [];
  updates = 0;
  retries = 0;
  readonly errors: unknown[] = [];
  #stop = false;
  readonly #done: Promise<void>;

  /** Inserts customers numbered from `from` and bumps customer 1's name, one call at a time. */
  constructor(tenantry: Tenantry, tenant: string, from: number) {
    this.#done = (async () => {
      for (let n = from; !this.#stop; n++) {
        await this.#retry(() =>
          tenantry.withTenant(tenant, (db) =>
            db.query('INSERT INTO customer (cust_num, name) VALUES ($1, $2)', [n, `writer ${n}`]),
          ),
        );
        this.inserted.push(n);
        if (n % 3 === 0 && n > from) {
          await this.#retry(() =>
            tenantry.withTenant(tenant, (db) =>
              db.transaction(async (tx) => {
                await tx.query("UPDATE customer SET name = name || '+' WHERE cust_num = 1");
                const gone = await tx.query('DELETE FROM customer WHERE cust_num = $1', [n - 1]);
                // every acknowledged write must have found its row: a write that silently
                // missed (routed to a copy without the row) is a lost write
                if (gone.rowCount !== 1) {
                  const where = await tx.query<{ db: string; path: string }>(
                    'SELECT current_database() AS db, current_setting($1) AS path',
                    ['search_path'],
                  );
                  throw new Error(
                    `DELETE of ${n - 1} found ${gone.rowCount} rows in ${JSON.stringify(where.rows[0])}`,
                  );
                }
              }),
            ),
          );
          this.updates++;
          this.inserted.splice(this.inserted.indexOf(n - 1), 1);
        }
      }
    })().catch((error: unknown) => {
      this.errors.push(error);
    });
  }

  async #retry(write: () => Promise<unknown>): Promise<void> {
    for (;;) {
      try {
        await write();
        return;
      } catch (error) {
        if (!isRetryable(error)) throw error;
        this.retries++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  /** Stops after the write in flight. */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
  }
}

/** The tenant's customers as `cust_num → name`, read through tenantry. */
export async function customers(tenantry: Tenantry, tenant: string): Promise<Map<number, string>> {
  const { rows } = await tenantry.withTenant(tenant, (db) =>
    db.query<{ cust_num: number; name: string }>('SELECT cust_num, name FROM customer ORDER BY cust_num'),
  );
  return new Map(rows.map((r) => [r.cust_num, r.name]));
}
