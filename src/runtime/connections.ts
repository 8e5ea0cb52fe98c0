import pg from 'pg';
import type { Logger } from '../logger.js';

/** Handles a notification's payload. */
export type NotificationHandler = (payload: string) => void;

/** Options of {@link RuntimeConnections}. */
export interface RuntimeConnectionsOptions {
  readonly databaseUrl: string;
  /** The maintenance role the runtime's own catalog queries run as (it bypasses RLS). */
  readonly maintRole: string;
  readonly logger: Logger;
}

/**
 * The runtime's own connections to the catalog database, opened on first use: a small pool whose
 * sessions run as the maintenance role (cross-tenant bookkeeping: claims of shared tenants'
 * jobs, "has work" signals, acknowledged event positions), and one listening connection for the
 * runtime's notification channels, reconnected when lost. Notifications are hints only.
 */
export class RuntimeConnections {
  readonly #options: RuntimeConnectionsOptions;
  #pool: pg.Pool | undefined;
  #listener: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #handlers = new Map<string, Set<NotificationHandler>>();
  readonly #lost = new Set<() => void>();

  constructor(options: RuntimeConnectionsOptions) {
    this.#options = options;
  }

  /** Runs one statement as the maintenance role on the catalog database. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    if (!this.#pool) {
      // The session acts as the maintenance role from its start (no extra statement per query).
      const pool = new pg.Pool({
        connectionString: this.#options.databaseUrl,
        max: 3,
        application_name: 'tenantry-runtime',
        options: `-c role=${this.#options.maintRole}`,
      });
      pool.on('error', (error) =>
        this.#options.logger.warn({ err: error }, 'idle runtime connection failed'),
      );
      this.#pool = pool;
    }
    return this.#pool.query<R>(text, values === undefined ? undefined : [...values]);
  }

  /** Sends a notification (a hint) on `channel`. */
  async notify(channel: string, payload: string): Promise<void> {
    await this.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /**
   * Calls `handler` for every notification on `channel`, starting the listening connection when
   * needed; resolves once listening. Returns a function that removes the handler.
   */
  async listen(channel: string, handler: NotificationHandler): Promise<() => void> {
    let handlers = this.#handlers.get(channel);
    if (!handlers) this.#handlers.set(channel, (handlers = new Set()));
    handlers.add(handler);
    if (this.#listener) await this.#listener.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    else await this.#connect();
    return () => handlers.delete(handler);
  }

  /** Calls `fn` whenever the listening connection is lost: notifications may have been missed. */
  onLost(fn: () => void): () => void {
    this.#lost.add(fn);
    return () => this.#lost.delete(fn);
  }

  /** Whether notifications reach this process now. */
  get listening(): boolean {
    return this.#listener !== undefined && !this.#closed;
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#open().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({
      connectionString: this.#options.databaseUrl,
      application_name: 'tenantry-runtime-listener',
    });
    client.on('notification', (message) => {
      for (const handler of this.#handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    client.on('error', (error) => {
      this.#options.logger.warn({ err: error }, 'runtime listener lost its connection; reconnecting');
      this.#lose(client);
    });
    client.on('end', () => this.#lose(client));
    try {
      await client.connect();
      for (const channel of this.#handlers.keys())
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      this.#listener = client;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'runtime listener could not connect; retrying');
      this.#lose(client);
    }
  }

  #lose(client: pg.Client): void {
    if (this.#closed || this.#reconnect || (this.#listener && this.#listener !== client)) return;
    this.#listener = undefined;
    for (const fn of this.#lost) fn();
    void client.end().catch(() => undefined);
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      void this.#connect();
    }, 500);
    this.#reconnect.unref();
  }

  /** Closes the pool and the listening connection. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    await this.#connecting?.catch(() => undefined);
    const listener = this.#listener;
    this.#listener = undefined;
    await Promise.all([listener?.end().catch(() => undefined), this.#pool?.end().catch(() => undefined)]);
  }
}
