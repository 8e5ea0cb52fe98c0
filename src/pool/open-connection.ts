import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { IdentityPool } from './pool-state.js';
import { PooledConnection } from './pooled-connection.js';

/** Timeouts of a new backend connection. */
export interface OpenOptions {
  readonly connectTimeoutMs: number;
  /** Client-side statement limit (0: none). */
  readonly queryTimeoutMs: number;
}

/**
 * Opens a backend connection for `pool`, giving up after the connect timeout (a server that
 * accepts the TCP connection but never answers must not hold the checkout forever). A failure
 * that is not PostgreSQL's own answer becomes `TENANTRY_ERR_DATABASE_UNREACHABLE`. `onError`
 * receives the connection's later errors.
 */
export async function openConnection(
  pool: IdentityPool,
  options: OpenOptions,
  onError: (connection: PooledConnection, error: Error) => void,
): Promise<PooledConnection> {
  // A failed connection attempt provably sent no statement: try once more on a fresh socket,
  // unless the first one already used up the time a checkout may take.
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const config = await pool.config();
    const client = new pg.Client({
      connectionTimeoutMillis: options.connectTimeoutMs,
      ...(options.queryTimeoutMs > 0 ? { query_timeout: options.queryTimeoutMs } : {}),
      ...config,
    });
    const connection = new PooledConnection(client, pool.key);
    client.on('error', (error) => onError(connection, error));
    try {
      await client.connect();
      return connection;
    } catch (error) {
      await connection.destroy();
      if (attempt >= 2 || Date.now() - started >= options.connectTimeoutMs / 2) {
        if (error instanceof pg.DatabaseError) throw error;
        throw new TenantryError(
          'DATABASE_UNREACHABLE',
          {
            where: `server ${pool.server}`,
            problem: error instanceof Error ? error.message : String(error),
          },
          { cause: error },
        );
      }
      pool.resetConfig();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
