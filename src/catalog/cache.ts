import pg from 'pg';
import type { Logger } from '../logger.js';
import { readCatalog, type CatalogRead } from './cache-read.js';
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
 * can at most cause a re-read. A re-read fetches only the tenants changed or removed since the
 * previous one (see cache-read.ts); the poll re-reads everything.
 */
export class CatalogCache {
  readonly #options: CatalogCacheOptions;
  #byId = new Map<number, Tenant>();
  #byName = new Map<string, Tenant>();
  #byUuid = new Map<string, Tenant>();
  #tables: readonly RegisteredTable[] = [];
  #listener: pg.Client | undefined;
  /** The listening connection, also while it connects. */
  #current: pg.Client | undefined;
  #reloading: Promise<void> | undefined;
  /** The read queued behind {@link #reloading}, shared by everyone who asked meanwhile. */
  #queued: Promise<void> | undefined;
  /** Whether the next read must read every tenant (first read, poll). */
  #readAll = true;
  /** The previous read's horizon (see {@link CatalogRead.horizon}). */
  #horizon: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reconnect: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #changeListeners = new Set<() => void>();

  constructor(options: CatalogCacheOptions) {
    this.#options = options;
  }

  /**
   * Starts listening for changes, then loads the catalog: a change committed between the two
   * is then either in the load or announced to the listener (the other order could miss it
   * until the next poll).
   */
  async start(): Promise<void> {
    await this.#listen();
    await this.reload();
    this.#timer = setInterval(
      () => void this.#reload(true).catch(() => undefined),
      this.#options.pollMs ?? 30_000,
    );
    this.#timer.unref();
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client(this.#options.connection);
    this.#current = client;
    client.on('notification', () => void this.reload().catch(() => undefined));
    client.on('error', (error) => {
      this.#options.logger.warn({ err: error }, 'catalog listener lost its connection; reconnecting');
      this.#scheduleReconnect(client);
    });
    client.on('end', () => this.#scheduleReconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${CATALOG_CHANNEL}`);
      if (this.#closed || this.#current !== client) {
        // closed (or replaced) while connecting: nobody else would end it
        void client.end().catch(() => undefined);
        return;
      }
      this.#listener = client;
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'catalog listener could not connect; retrying');
      this.#scheduleReconnect(client);
    }
  }

  #scheduleReconnect(client: pg.Client): void {
    // Only the current connection's errors and end count (a late 'end' of an old one does not).
    if (this.#closed || this.#reconnect || client !== this.#current) return;
    this.#current = undefined;
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
   * Re-reads tenants and registered tables; resolves once a read that began after the call is
   * done, so a caller sees its own committed change. A call that arrives during a read queues one
   * more read after it, shared by every call that arrives meanwhile.
   */
  reload(): Promise<void> {
    return this.#reload(false);
  }

  #reload(all: boolean): Promise<void> {
    if (all) this.#readAll = true;
    for (const listener of this.#changeListeners) listener();
    if (this.#queued) return this.#queued;
    if (!this.#reloading) return this.#start();
    // The read under way may have begun before the caller's change: one more follows it.
    const queued = this.#reloading
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined;
        return this.#start();
      });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<void> {
    const reading: Promise<void> = this.#read().finally(() => {
      if (this.#reloading === reading) this.#reloading = undefined;
    });
    this.#reloading = reading;
    return reading;
  }

  async #read(): Promise<void> {
    const all = this.#readAll;
    this.#readAll = false;
    let read: CatalogRead;
    try {
      read = await readCatalog(this.#options.pool, all ? undefined : this.#horizon);
    } catch (error) {
      if (all) this.#readAll = true;
      throw error;
    }
    if (read.full) this.#replace(read.tenants);
    else this.#merge(read.tenants, read.removed);
    this.#horizon = read.horizon;
    this.#tables = Object.freeze([...read.tables]);
  }

  #replace(tenants: readonly Tenant[]): void {
    const byId = new Map<number, Tenant>();
    const byName = new Map<string, Tenant>();
    const byUuid = new Map<string, Tenant>();
    for (const tenant of tenants) {
      byId.set(tenant.id, tenant);
      byName.set(tenant.name.toLowerCase(), tenant);
      byUuid.set(tenant.uuid, tenant);
    }
    this.#byId = byId;
    this.#byName = byName;
    this.#byUuid = byUuid;
  }

  /** Applies removed ids, then changed tenants (which are current: a removed id may be back). */
  #merge(changed: readonly Tenant[], removed: readonly number[]): void {
    for (const id of removed) this.#forget(this.#byId.get(id));
    for (const tenant of changed) {
      this.#forget(this.#byId.get(tenant.id));
      this.#byId.set(tenant.id, tenant);
      this.#byName.set(tenant.name.toLowerCase(), tenant);
      this.#byUuid.set(tenant.uuid, tenant);
    }
  }

  /** Removes `tenant`'s entries (its name and uuid only while they still point at it). */
  #forget(tenant: Tenant | undefined): void {
    if (!tenant) return;
    if (this.#byId.get(tenant.id) === tenant) this.#byId.delete(tenant.id);
    const name = tenant.name.toLowerCase();
    if (this.#byName.get(name) === tenant) this.#byName.delete(name);
    if (this.#byUuid.get(tenant.uuid) === tenant) this.#byUuid.delete(tenant.uuid);
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
    const listener = this.#current ?? this.#listener;
    this.#listener = undefined;
    this.#current = undefined;
    await this.#queued?.catch(() => undefined);
    await this.#reloading?.catch(() => undefined);
    await listener?.end().catch(() => undefined);
  }
}
