import type pg from 'pg';

/** The longest timer Node accepts (ms, about 24.8 days): a client-side limit that never fires. */
const NEVER_MS = 2_147_483_647;

/** A query config node-postgres accepts, with its per-query client-side timeout. */
export type LongQueryConfig = pg.QueryConfig & { query_timeout: number };

/**
 * A statement of operator work that may rightly run long — cloning, dropping or moving a
 * tenant's schema, deleting a dropped tenant's rows, `CREATE DATABASE` — exempt from the operator
 * pool's client-side timeout (`pool.queryTimeoutMs`). That timeout is for catalog reads on a dead
 * network path (logins, revalidation); when it fires, node-postgres gives up on the connection
 * while PostgreSQL may still finish the statement, so a long DDL would be reported as failed
 * although it took effect. Used with any client: without a pool timeout it changes nothing.
 */
export function longQuery(text: string, values?: unknown[]): LongQueryConfig {
  return values === undefined ? { text, query_timeout: NEVER_MS } : { text, values, query_timeout: NEVER_MS };
}
