import { LRUCache } from 'lru-cache';
import type pg from 'pg';
import type { AddUserOptions, User, UserRecord } from './user-store.js';
import { UserStore } from './user-store.js';
import type { UserRef } from './names.js';

/** Options of {@link UserCache}. */
export interface UserCacheOptions {
  /** Users (and, separately, unknown names) kept at most (default 10,000 each). */
  readonly max?: number;
  /** Longest life of an entry in ms, a safety net behind the invalidation (default 60 s). */
  readonly ttlMs?: number;
  /**
   * Whether entries may be used: true while the catalog's listening connection is up, so that a
   * change made by another process is sure to invalidate them.
   */
  readonly enabled: () => boolean;
}

/** Figures of a {@link UserCache}. */
export interface UserCacheStats {
  readonly users: number;
  readonly unknown: number;
  readonly hits: number;
  readonly misses: number;
}

/**
 * The user → tenant mapping in memory: users by `(domain, name)`, and names known not to exist
 * (a negative cache, so that probing unknown names does not reach the database each time). The
 * catalog triggers on app_user, domain and tenant NOTIFY every process; the catalog cache then
 * calls {@link clear}, so a removed user or a moved domain stops resolving within the
 * notification's delay. A lookup that was in flight while the cache was cleared is not stored.
 */
export class UserCache {
  readonly #found: LRUCache<string, UserRecord>;
  readonly #missing: LRUCache<string, true>;
  readonly #enabled: () => boolean;
  #generation = 0;
  #hits = 0;
  #misses = 0;

  constructor(options: UserCacheOptions) {
    const max = options.max ?? 10_000;
    const ttl = options.ttlMs ?? 60_000;
    // The TTL is a safety net: reading the clock every 100 ms (not every 1 ms) is precise enough,
    // and spares the timer lru-cache sets each time it refreshes its idea of "now".
    this.#found = new LRUCache<string, UserRecord>({ max, ttl, ttlResolution: 100 });
    this.#missing = new LRUCache<string, true>({ max, ttl, ttlResolution: 100 });
    this.#enabled = options.enabled;
  }

  /** The user `ref` from memory, else from `load` (and remembered, found or not). */
  async find(
    ref: UserRef,
    load: (ref: UserRef) => Promise<UserRecord | undefined>,
  ): Promise<UserRecord | undefined> {
    if (!this.#enabled()) return load(ref);
    const key = `${ref.domain.toLowerCase()}\0${ref.user.toLowerCase()}`;
    const hit = this.#found.get(key);
    if (hit) {
      this.#hits++;
      return hit;
    }
    if (this.#missing.get(key)) {
      this.#hits++;
      return undefined;
    }
    this.#misses++;
    const generation = this.#generation;
    const record = await load(ref);
    if (generation === this.#generation && this.#enabled()) {
      if (record) this.#found.set(key, record);
      else this.#missing.set(key, true);
    }
    return record;
  }

  /** Forgets everything (the catalog may have changed). */
  clear(): void {
    this.#generation++;
    this.#found.clear();
    this.#missing.clear();
  }

  /** Entries and hit counts. */
  stats(): UserCacheStats {
    return {
      users: this.#found.size,
      unknown: this.#missing.size,
      hits: this.#hits,
      misses: this.#misses,
    };
  }
}

/**
 * The {@link UserStore} of a tenantry instance: logins, principals, delegation tokens and the
 * gateway look users up through a {@link UserCache}; this process's own changes clear it at
 * once, other processes' changes through the catalog's notifications.
 */
export class CachedUserStore extends UserStore {
  readonly #cache: UserCache;

  constructor(pool: pg.Pool, cache: UserCache) {
    super(pool);
    this.#cache = cache;
  }

  override find(ref: UserRef): Promise<UserRecord | undefined> {
    return this.#cache.find(ref, (r) => this.load(r));
  }

  override async add(ref: string, options?: AddUserOptions): Promise<User> {
    try {
      return await super.add(ref, options);
    } finally {
      this.#cache.clear();
    }
  }

  override async remove(ref: string): Promise<void> {
    try {
      await super.remove(ref);
    } finally {
      this.#cache.clear();
    }
  }

  override async setPassword(ref: string, password: string): Promise<void> {
    try {
      await super.setPassword(ref, password);
    } finally {
      this.#cache.clear();
    }
  }

  /** Entries and hit counts of the user cache. */
  cacheStats(): UserCacheStats {
    return this.#cache.stats();
  }
}
