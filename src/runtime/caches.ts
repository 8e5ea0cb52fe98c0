import { randomUUID } from 'node:crypto';
import type { CatalogCache, Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RuntimeConnections } from './connections.js';
import { TenantCache, checkTtl, type CacheOptions } from './tenant-cache.js';

/** The channel caches announce changes on. */
export const CACHE_CHANNEL = 'tenantry_cache';

/** NOTIFY payloads are limited to 8,000 bytes; longer keys invalidate the tenant's whole cache. */
const MAX_PAYLOAD = 7_900;

const NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,62}$/;

/** An announcement: origin process, cache, tenant, key (null: every key). */
interface Announcement {
  readonly o: string;
  readonly c: string;
  readonly t: number;
  readonly k: string | null;
}

function checkOptions(options: CacheOptions): void {
  const int = (value: unknown, min: number, max: number) =>
    typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
  if (typeof options !== 'object' || options === null || !int(options.max, 1, 10_000_000)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'cache max',
      problem: 'expected an integer from 1 to 10,000,000',
    });
  }
  if (options.ttl !== undefined) checkTtl(options.ttl);
  if (options.maxTenants !== undefined && !int(options.maxTenants, 1, 1_000_000)) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'cache maxTenants',
      problem: 'expected an integer from 1 to 1,000,000',
    });
  }
  if (options.notify !== undefined && typeof options.notify !== 'boolean') {
    throw new TenantryError('INVALID_ARGUMENT', { what: 'cache notify', problem: 'expected a boolean' });
  }
}

/**
 * The named tenant-scoped caches of one tenantry instance, and their cross-process
 * invalidation: a change to an entry of a `notify` cache is announced with NOTIFY (only a hint:
 * whoever can NOTIFY can at most make a cache drop entries), and every process drops its copy.
 */
export class CacheRegistry {
  readonly #caches = new Map<string, { cache: TenantCache<NonNullable<unknown>>; options: string }>();
  readonly #origin = randomUUID();
  readonly #catalog: CatalogCache;
  readonly #connections: RuntimeConnections;
  readonly #logger: Logger;
  #listening = false;

  constructor(catalog: CatalogCache, connections: RuntimeConnections, logger: Logger) {
    this.#catalog = catalog;
    this.#connections = connections;
    this.#logger = logger;
  }

  /**
   * The cache `name` (created on first call; later calls must pass the same options). Throws
   * `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name, bad options or options differing from the
   * first call's.
   */
  get<V extends NonNullable<unknown>>(name: string, options: CacheOptions): TenantCache<V> {
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'cache name',
        problem: `${JSON.stringify(name)} must start with a letter (letters, digits, _ . : -, at most 63)`,
      });
    }
    checkOptions(options);
    const key = JSON.stringify([
      options.max,
      options.ttl ?? null,
      options.maxTenants ?? null,
      options.notify === true,
    ]);
    const known = this.#caches.get(name);
    if (known) {
      if (known.options !== key) {
        throw new TenantryError('INVALID_ARGUMENT', {
          what: `options of cache ${name}`,
          problem: 'they differ from those it was created with',
        });
      }
      return known.cache as unknown as TenantCache<V>;
    }
    const notify = options.notify === true;
    if (notify) this.#listen();
    const cache = new TenantCache<V>(name, options, {
      catalog: this.#catalog,
      hearing: () => this.#connections.listening,
      ...(notify ? { announce: (tenant: Tenant, k: string | null) => this.#announce(name, tenant, k) } : {}),
    });
    this.#caches.set(name, { cache: cache as unknown as TenantCache<NonNullable<unknown>>, options: key });
    return cache;
  }

  #listen(): void {
    if (this.#listening) return;
    this.#listening = true;
    this.#connections.onLost(() => {
      for (const { cache } of this.#caches.values()) cache.reset();
    });
    this.#connections
      .listen(CACHE_CHANNEL, (payload) => this.#receive(payload))
      .catch((error: unknown) => this.#logger.warn({ err: error }, 'cache invalidation listener failed'));
  }

  #announce(name: string, tenant: Tenant, key: string | null): void {
    let payload = JSON.stringify({ o: this.#origin, c: name, t: tenant.id, k: key } satisfies Announcement);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) {
      payload = JSON.stringify({ o: this.#origin, c: name, t: tenant.id, k: null } satisfies Announcement);
    }
    this.#connections
      .notify(CACHE_CHANNEL, payload)
      .catch((error: unknown) =>
        this.#logger.warn({ err: error, cache: name }, 'cache invalidation not sent'),
      );
  }

  #receive(payload: string): void {
    let message: Partial<Announcement>;
    try {
      message = JSON.parse(payload) as Partial<Announcement>;
    } catch {
      return;
    }
    if (message.o === this.#origin || typeof message.c !== 'string' || typeof message.t !== 'number') return;
    const key = typeof message.k === 'string' ? message.k : null;
    this.#caches.get(message.c)?.cache.invalidate(message.t, key);
  }

  /** Drops the entries of tenants that are gone, disabled or changed (after a catalog change). */
  prune(): void {
    for (const { cache } of this.#caches.values()) cache.prune();
  }

  /** Drops a dropped tenant's entries at once. */
  forget(tenant: Tenant): void {
    for (const { cache } of this.#caches.values()) cache.invalidate(tenant.id, null);
  }
}
