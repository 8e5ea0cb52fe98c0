import pg from 'pg';
import type { Logger } from '../logger.js';
import {
  TENANT_COLUMNS,
  toRegisteredTable,
  toTenant,
  type RegisteredTableRow,
  type TenantRow,
} from './rows.js';
import type { RegisteredTable, Tenant, TenantRef } from './types.js';

/** The NOTIFY channel catalog triggers announce changes on. */
export const CATALOG_CHANNEL = 'tenantry_catalog';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Options of {@link CatalogCache}. */
export interface CatalogCacheOptions {
  /** Connection settings of the listening connection (the operator's). */
  readonly connection: pg.ClientConfig;
  /** Pool the catalog is read through. */
  readonly pool: pg.Pool;
  readonly logger: Logger;
  /** Safety re-read interval in ms in case a notification is lost (default 30 s). */
  readonly pollMs?: number;
}

/**
 * The in-process copy of the catalog. It re-reads the catalog whenever the catalog triggers
 * NOTIFY (coalescing bursts), after its listening connection reconnects, and every `pollMs`.
 * A notification is only a hint: its payload is ignored, so whoever can NOTIFY on the channel
 * can at most cause a re-read.
 */
export class CatalogCache {
  readonly #options: CatalogCacheOptions;
  #byId = new Map<number, Tenant>();
  #byName = new Map<string, Tenant>();
  #byUuid = new Map<string, Tenant>();
  #tables: readonly RegisteredTable[] = [];
  #listener: pg.Client | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  #timer: NodeJS.Timeout | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #changeListeners = new Set<() => void>();

  constructor(options: CatalogCacheOptions) {
    this.#options = options;
  }

  /** Loads the catalog and starts listening for changes. */
  async start(): Promise<void> {
    await this.reload();
    await this.#listen();
    this.#timer = setInterval(
      () => void this.reload().catch(() => undefined),
      this.#options.pollMs ?? 30_000,
    );
    this.#timer.unref();
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.#options.connection);
    client.on('notification', () => void this.reload().catch(() => undefined));
    client.on('error', (error) => {
      this.#options.logger.warn({ err: error }, 'catalog listener lost its connection; reconnecting');
      this.#scheduleReconnect(client);
    });
    client.on('end', () => this.#scheduleReconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CATALOG_CHANNEL}`);
      this.#listener = client;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'catalog listener could not connect; retrying');
      this.#scheduleReconnect(client);
    }
  }

  #scheduleReconnect(client: pg.Client): void {
    if (this.#closed || this.#reconnect || (this.#listener && this.#listener !== client)) return;
    this.#listener = undefined;
    // Notifications may be lost until the new connection listens: derived caches start over.
    for (const listener of this.#changeListeners) listener();
    void client.end().catch(() => undefined);
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      void this.#listen().then(() => this.reload().catch(() => undefined));
    }, 500);
    this.#reconnect.unref();
  }

  /**
   * Re-reads tenants and registered tables. Concurrent calls share one read, and a call that
   * arrives during a read triggers exactly one more read after it.
   */
  reload(): Promise<void> {
    for (const listener of this.#changeListeners) listener();
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = this.#read().finally(() => {
      this.#reloading = undefined;
      if (this.#reloadAgain) {
        this.#reloadAgain = false;
        void this.reload().catch(() => undefined);
      }
    });
    return this.#reloading;
  }

  async #read(): Promise<void> {
    const [tenants, tables] = await Promise.all([
      this.#options.pool.query<TenantRow>(`SELECT ${TENANT_COLUMNS} FROM tenantry.tenant`),
      this.#options.pool.query<RegisteredTableRow>(
        'SELECT schema_name, table_name, kind, tenant_column, writable FROM tenantry.registered_table ORDER BY 1, 2',
      ),
    ]);
    const byId = new Map<number, Tenant>();
    const byName = new Map<string, Tenant>();
    const byUuid = new Map<string, Tenant>();
    for (const row of tenants.rows) {
      const tenant = toTenant(row);
      byId.set(tenant.id, tenant);
      byName.set(tenant.name.toLowerCase(), tenant);
      byUuid.set(tenant.uuid, tenant);
    }
    this.#byId = byId;
    this.#byName = byName;
    this.#byUuid = byUuid;
    this.#tables = Object.freeze(tables.rows.map(toRegisteredTable));
  }

  /**
   * Calls `listener` whenever the catalog may have changed: on every re-read — after a
   * notification, after the listening connection reconnects, on the safety poll and on explicit
   * reloads — before the re-read starts. Caches derived from the catalog (the user cache) clear
   * themselves here. Returns a function that removes the listener.
   */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /**
   * Whether the listening connection is up: only then do notifications reach this process, so
   * only then may derived caches answer from memory.
   */
  get listening(): boolean {
    return this.#listener !== undefined && !this.#closed;
  }

  /** The cached tenant for an id, uuid or name; `undefined` when unknown to the cache. */
  get(ref: TenantRef): Tenant | undefined {
    if (typeof ref === 'number') return this.#byId.get(ref);
    if (/^-?\d+$/.test(ref)) return this.#byId.get(Number(ref));
    if (UUID.test(ref)) return this.#byUuid.get(ref.toLowerCase());
    return this.#byName.get(ref.toLowerCase());
  }

  /** Looks a tenant up in the cache, re-reading the catalog once on a miss. */
  async find(ref: TenantRef): Promise<Tenant | undefined> {
    const hit = this.get(ref);
    if (hit) return hit;
    await this.reload();
    return this.get(ref);
  }

  /** Every cached tenant, ordered by id. */
  tenants(): Tenant[] {
    return [...this.#byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Every registered table. */
  tables(): readonly RegisteredTable[] {
    return this.#tables;
  }

  /** Stops listening and polling. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#reconnect) clearTimeout(this.#reconnect);
    const listener = this.#listener;
    this.#listener = undefined;
    await this.#reloading?.catch(() => undefined);
    await listener?.end().catch(() => undefined);
  }
}
