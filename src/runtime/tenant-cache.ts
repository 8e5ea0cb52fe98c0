import { LRUCache } from 'lru-cache';
import type { CatalogCache, Tenant } from '../catalog/index.js';
import { getTenant } from '../context/index.js';
import { TenantryError } from '../errors.js';

/** Options of `tenantry.cache(name, options)`. */
export interface CacheOptions {
  /** Entries kept per tenant (1 … 10,000,000); the least recently used go first. */
  readonly max: number;
  /** Time to live of an entry in ms (default: entries do not expire). */
  readonly ttl?: number;
  /** Tenants whose entries are kept at once (default 1,000); the least recently used tenant goes. */
  readonly maxTenants?: number;
  /**
   * Tell other processes on the same catalog when an entry changes or is deleted (NOTIFY on
   * `tenantry_cache`), so they drop their copy. While this process cannot hear those
   * notifications (listener down), the cache answers nothing from memory.
   */
  readonly notify?: boolean;
}

/** One tenant's entries, and the catalog version of the tenant they were made under. */
interface Bucket<V extends NonNullable<unknown>> {
  readonly stamp: string;
  readonly entries: LRUCache<string, V>;
  /** Bumped by every invalidation, so a load that overlapped one is not kept. */
  generation: number;
  readonly loading: Map<string, Promise<V>>;
}

/** How a cache tells others about a change (set by the registry when `notify` is on). */
export type CacheAnnouncer = (tenant: Tenant, key: string | null) => void;

/** What a cache needs besides its options. */
export interface TenantCacheDeps {
  readonly catalog: CatalogCache;
  /** Announces changes to other processes; undefined without `notify`. */
  readonly announce?: CacheAnnouncer;
  /** Whether announcements of other processes reach this one now. */
  readonly hearing: () => boolean;
}

/** A tenant's entries stay valid while its catalog row is unchanged (same uuid, same update). */
function stampOf(tenant: Tenant): string {
  return `${tenant.uuid}:${tenant.updatedAt.getTime()}`;
}

/**
 * A cache whose entries belong to the tenant in context: every call reads and writes only the
 * current tenant's entries (`TENANTRY_ERR_NO_TENANT` outside a tenant context), so the same
 * key in two tenants never collides. A tenant's entries vanish when it is disabled or dropped —
 * or when its catalog row changes at all — as seen by this process's catalog cache.
 */
export class TenantCache<V extends NonNullable<unknown>> {
  /** The cache's name (unique per tenantry instance). */
  readonly name: string;
  readonly #options: CacheOptions;
  readonly #deps: TenantCacheDeps;
  readonly #buckets: LRUCache<number, Bucket<V>>;

  constructor(name: string, options: CacheOptions, deps: TenantCacheDeps) {
    this.name = name;
    this.#options = options;
    this.#deps = deps;
    this.#buckets = new LRUCache({ max: options.maxTenants ?? 1000 });
  }

  /** The current tenant's bucket, dropped first when it no longer matches the catalog. */
  #bucket(create: boolean): Bucket<V> | undefined {
    const tenant = getTenant();
    const current = this.#deps.catalog.get(tenant.id);
    let bucket = this.#buckets.get(tenant.id);
    const usable = current !== undefined && current.state !== 'disabled' && current.uuid === tenant.uuid;
    if (bucket && (!usable || bucket.stamp !== stampOf(current))) {
      this.#buckets.delete(tenant.id);
      bucket = undefined;
    }
    if (!usable) return undefined;
    if (this.#options.notify === true && !this.#deps.hearing()) {
      // Changes elsewhere may be missed meanwhile: keep nothing, answer nothing.
      this.#buckets.clear();
      return undefined;
    }
    if (!bucket && create) {
      const entries = new LRUCache<string, V>({
        max: this.#options.max,
        ...(this.#options.ttl === undefined ? {} : { ttl: this.#options.ttl }),
      });
      bucket = { stamp: stampOf(current), entries, generation: 0, loading: new Map() };
      this.#buckets.set(tenant.id, bucket);
    }
    return bucket;
  }

  /** The current tenant's value for `key`, or undefined. */
  get(key: string): V | undefined {
    return this.#bucket(false)?.entries.get(checkKey(key));
  }

  /** Whether the current tenant has a (live) value for `key`. */
  has(key: string): boolean {
    return this.#bucket(false)?.entries.has(checkKey(key)) ?? false;
  }

  /** Sets the current tenant's value for `key` (`ttl` in ms overrides the cache's). */
  set(key: string, value: V, options: { readonly ttl?: number } = {}): this {
    checkKey(key);
    if (options.ttl !== undefined) checkTtl(options.ttl);
    const bucket = this.#bucket(true);
    this.#deps.announce?.(getTenant(), key);
    bucket?.entries.set(key, value, options.ttl === undefined ? {} : { ttl: options.ttl });
    return this;
  }

  /** Deletes the current tenant's value for `key`; answers whether there was one here. */
  delete(key: string): boolean {
    checkKey(key);
    const bucket = this.#bucket(false);
    this.#deps.announce?.(getTenant(), key);
    if (!bucket) return false;
    bucket.generation++;
    return bucket.entries.delete(key);
  }

  /** Deletes every entry of the current tenant. */
  clear(): void {
    const tenant = getTenant();
    this.#deps.announce?.(tenant, null);
    this.#buckets.delete(tenant.id);
  }

  /**
   * The current tenant's value for `key`, loading it with `load` on a miss; concurrent misses of
   * one key share one load. A load that overlapped an invalidation is returned but not kept.
   */
  async fetch(key: string, load: (key: string) => Promise<V>): Promise<V> {
    checkKey(key);
    const bucket = this.#bucket(true);
    const hit = bucket?.entries.get(key);
    if (hit !== undefined || !bucket) return hit ?? load(key);
    const pending = bucket.loading.get(key);
    if (pending) return pending;
    const generation = bucket.generation;
    const loading = load(key).finally(() => bucket.loading.delete(key));
    bucket.loading.set(key, loading);
    const value = await loading;
    if (bucket.generation === generation && this.#buckets.peek(getTenant().id) === bucket) {
      bucket.entries.set(key, value);
    }
    return value;
  }

  /** Number of live entries of the current tenant. */
  get size(): number {
    return this.#bucket(false)?.entries.size ?? 0;
  }

  /** Tenants with entries in memory, and their entries in total (for metrics and tests). */
  stats(): { tenants: number; entries: number } {
    let entries = 0;
    for (const bucket of this.#buckets.values()) entries += bucket.entries.size;
    return { tenants: this.#buckets.size, entries };
  }

  /** Drops one key (or, with `key` null, every entry) of tenant `tenantId`: another process changed it. */
  invalidate(tenantId: number, key: string | null): void {
    const bucket = this.#buckets.peek(tenantId);
    if (!bucket) return;
    if (key === null) {
      this.#buckets.delete(tenantId);
      return;
    }
    bucket.generation++;
    bucket.entries.delete(key);
  }

  /** Drops the entries of tenants that are gone, disabled or changed in the catalog. */
  prune(): void {
    for (const [id, bucket] of this.#buckets.entries()) {
      const current = this.#deps.catalog.get(id);
      if (!current || current.state === 'disabled' || stampOf(current) !== bucket.stamp)
        this.#buckets.delete(id);
    }
  }

  /** Drops every entry (all tenants): announcements may have been missed. */
  reset(): void {
    this.#buckets.clear();
  }
}

function checkKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1000) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'cache key',
      problem: 'expected a string of 1 to 1,000 characters',
    });
  }
  return key;
}

/** Throws `TENANTRY_ERR_INVALID_ARGUMENT` unless `ttl` is a positive integer (ms). */
export function checkTtl(ttl: number): void {
  if (!Number.isSafeInteger(ttl) || ttl < 1) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'cache ttl',
      problem: 'expected a positive integer of ms',
    });
  }
}
