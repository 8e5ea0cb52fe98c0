import pg from 'pg';
import { normalizeSql } from '../session/sql-guard.js';

/** One backend connection owned by the pool manager. */
export class PooledConnection {
  readonly client: pg.Client;
  readonly poolKey: string;
  readonly createdAt = Date.now();
  lastUsedAt = Date.now();
  uses = 0;
  /** Schemas this backend has served (each costs relation-cache memory in the backend). */
  readonly schemas = new Set<string>();
  /** Set when the connection failed or must not be reused. */
  broken = false;
  /** Set when a statement may have left session state behind (SET, LISTEN, temp tables…). */
  dirty = false;

  constructor(client: pg.Client, poolKey: string) {
    this.client = client;
    this.poolKey = poolKey;
  }

  /**
   * Closes the connection; never throws, never hangs: a broken connection's socket is destroyed
   * at once, and a graceful goodbye the server does not acknowledge within `graceMs` (a dead
   * network path) is cut short the same way.
   */
  async destroy(graceMs = 2_000): Promise<void> {
    const wasBroken = this.broken;
    this.broken = true;
    const stream = (this.client as unknown as { connection?: { stream?: { destroy(): void } } }).connection
      ?.stream;
    if (wasBroken) stream?.destroy();
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        stream?.destroy();
        resolve();
      }, graceMs);
      timer.unref();
    });
    await Promise.race([this.client.end().catch(() => undefined), cut]);
    clearTimeout(timer);
  }
}

/**
 * Where faces that drive a backend themselves (the gateway) keep what they know of its session
 * (prepared statements, settings): cleared whenever the pool resets the connection.
 */
export const SESSION_STATE: unique symbol = Symbol('tenantry.sessionState');

/** SQL that may leave session state on a connection: a reset is due before another identity uses it. */
const STATEFUL_STATEMENT = /(?:^|;)\s*(?:set|reset|listen|prepare|declare|discard|load)\b/i;
const STATEFUL_ANYWHERE =
  /\b(?:temp|temporary|pg_temp\w*|set_config|pg_(?:try_)?advisory_lock(?:_shared)?|with\s+hold)\b/i;

/** Whether running `sql` may leave session state behind (conservative: false positives only cost a reset). */
export function mayLeaveState(sql: string): boolean {
  if (STATEFUL_STATEMENT.test(sql) || STATEFUL_ANYWHERE.test(sql)) return true;
  // A comment before a statement (`/* app */ SET …`) hides it from the patterns: look again
  // without comments (as PostgreSQL reads it), only when there is one.
  return (sql.includes('--') || sql.includes('/*')) && STATEFUL_STATEMENT.test(normalizeSql(sql));
}

/**
 * Makes a connection safe for its next user: rolls back an open transaction and, when the
 * connection may carry session state, runs `DISCARD ALL` (settings, search_path, temp tables,
 * prepared statements, advisory locks, LISTEN registrations, cursors). Returns false when the
 * connection could not be reset and must be destroyed.
 */
export async function resetConnection(connection: PooledConnection): Promise<boolean> {
  const client = connection.client;
  try {
    const status = client.getTransactionStatus?.();
    if (status === 'T' || status === 'E') {
      await client.query('ROLLBACK');
      connection.dirty = true;
    } else if (status !== 'I' && status !== null && status !== undefined) {
      return false;
    }
    if (connection.dirty) {
      await client.query('DISCARD ALL');
      delete (client as pg.Client & { [SESSION_STATE]?: unknown })[SESSION_STATE];
      // node-postgres remembers which named statements it prepared; DISCARD ALL dropped them.
      const wire = (client as unknown as { connection?: { parsedStatements?: Record<string, unknown> } })
        .connection;
      if (wire?.parsedStatements) wire.parsedStatements = {};
      connection.dirty = false;
    }
    return true;
  } catch {
    return false;
  }
}
