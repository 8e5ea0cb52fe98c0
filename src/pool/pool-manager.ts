import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { FairQueue } from './fair-queue.js';
import { PoolLease } from './pool-lease.js';
import { IdentityPool, ServerState, TenantCounters } from './pool-state.js';
import { openConnection } from './open-connection.js';
import { resetConnection, type PooledConnection } from './pooled-connection.js';
import type { Lease, PoolManagerOptions, PoolStats, PoolTarget } from './types.js';

interface Waiter {
  readonly tenantId: number;
  readonly target: PoolTarget;
  readonly key: string;
  readonly since: number;
  timer: NodeJS.Timeout | undefined;
  resolve(lease: Lease): void;
  reject(error: unknown): void;
}

/**
 * The pool of pools. Pools are keyed by (server, identity) and created on first use; every
 * server has one connection budget shared by all its pools; checkouts wait in a queue that is
 * fair across tenants, under a per-tenant cap, with a timeout. Idle connections and pools are
 * evicted (LRU limit plus an unref'd idle timer); a closed pool never hands out a connection.
 */
export class PoolManager {
  readonly #pools = new Map<string, IdentityPool>();
  readonly #servers = new Map<string, ServerState>();
  readonly #tenants = new Map<number, TenantCounters>();
  readonly #queue = new FairQueue<Waiter>();
  readonly #logger: Logger;
  readonly #perTenantMax: number | undefined;
  readonly #maxPools: number;
  readonly #idleTimeoutMs: number;
  readonly #checkoutTimeoutMs: number;
  readonly #maxSchemas: number;
  readonly #maxUses: number;
  readonly #connectTimeoutMs: number;
  readonly #queryTimeoutMs: number;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;
  /** The per-tenant cap (derived from the budgets unless set), until a budget changes. */
  #tenantMaxCache: number | undefined;
  /** Pool keys per target object (targets are long-lived: one per tenant route). */
  readonly #keys = new WeakMap<PoolTarget, string>();
  /** The pool most recently moved to the end of the LRU order. */
  #recent: IdentityPool | undefined;
  readonly #onRelease = (lease: PoolLease): void => {
    lease.pool.inUse--;
    this.#release(lease.connection, lease.pool, lease.counters);
  };

  constructor(options: PoolManagerOptions, logger: Logger) {
    this.#logger = logger;
    this.#perTenantMax = options.perTenantMax;
    this.#maxPools = options.maxPools ?? 1000;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#checkoutTimeoutMs = options.checkoutTimeoutMs ?? 10_000;
    this.#maxSchemas = options.maxSchemasPerConnection ?? 100;
    this.#maxUses = options.maxUsesPerConnection ?? 0;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? this.#checkoutTimeoutMs;
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 0;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(5_000, Math.max(50, this.#idleTimeoutMs / 2)));
    this.#sweeper.unref();
  }

  /** Registers a server and its connection budget (or changes the budget). */
  setServer(name: string, budget: number): void {
    const state = this.#servers.get(name);
    if (state) state.budget = budget;
    else this.#servers.set(name, new ServerState(name, budget));
    this.#tenantMaxCache = undefined;
    this.#dispatch();
  }

  /** Closes every pool of `server` and forgets it (its in-use connections close on release). */
  removeServer(name: string): void {
    for (const pool of [...this.#pools.values()].filter((p) => p.server === name)) this.#closePool(pool);
    this.#servers.delete(name);
    this.#tenantMaxCache = undefined;
  }

  /** Closes the pool of one identity (e.g. a dropped tenant's role); later checkouts open a new one. */
  closeIdentity(server: string, identity: string): void {
    const pool = this.#pools.get(`${server}\0${identity}`);
    if (pool) this.#closePool(pool);
  }

  #tenantMax(): number {
    if (this.#perTenantMax !== undefined) return this.#perTenantMax;
    if (this.#tenantMaxCache === undefined) {
      const smallest = Math.min(...[...this.#servers.values()].map((s) => s.budget));
      this.#tenantMaxCache = Math.max(1, Math.floor(smallest / 4));
    }
    return this.#tenantMaxCache;
  }

  #keyOf(target: PoolTarget): string {
    let key = this.#keys.get(target);
    if (key === undefined) {
      key = `${target.server}\0${target.identity}`;
      this.#keys.set(target, key);
    }
    return key;
  }

  /**
   * A checkout that can be served at once, synchronously: nobody waits, the tenant is under
   * its cap and its pool has an idle connection. `undefined` otherwise (then use
   * {@link acquire}); the gateway checks out once per transaction and skips a promise this way.
   */
  tryAcquire(target: PoolTarget): Lease | undefined {
    if (this.#closed || this.#queue.size > 0 || !this.#servers.has(target.server)) return undefined;
    const counters = this.#counters(target);
    counters.name = target.tenantName;
    if (counters.inUse >= this.#tenantMax()) return undefined;
    const pool = this.#pools.get(this.#keyOf(target));
    if (!pool || pool.closed) return undefined;
    const connection = this.#takeIdle(pool);
    if (!connection) return undefined;
    this.#touch(pool);
    return this.#lease(counters, connection, pool, 0);
  }

  /** The most recently idle usable connection of `pool`, discarding broken ones on the way. */
  #takeIdle(pool: IdentityPool): PooledConnection | undefined {
    for (let connection = pool.idle.pop(); connection; connection = pool.idle.pop()) {
      if (!connection.broken) return connection;
      this.#discard(connection, pool);
    }
    return undefined;
  }

  /** Moves `pool` to the end of the LRU order. */
  #touch(pool: IdentityPool): void {
    if (this.#recent === pool) return;
    this.#recent = pool;
    this.#pools.delete(pool.key);
    this.#pools.set(pool.key, pool);
  }

  /**
   * Checks out a connection for `target`. Waits in the fair queue when the tenant is at its cap
   * or the server's budget is spent; throws `TENANTRY_ERR_POOL_TIMEOUT` after the checkout
   * timeout and `TENANTRY_ERR_CLOSED` once the manager is closed.
   */
  acquire(target: PoolTarget): Promise<Lease> {
    if (this.#closed) return Promise.reject(new TenantryError('CLOSED'));
    if (!this.#servers.has(target.server)) {
      return Promise.reject(new TenantryError('SERVER_NOT_FOUND', { server: target.server }));
    }
    this.#counters(target).name = target.tenantName;
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        tenantId: target.tenantId,
        target,
        key: this.#keyOf(target),
        since: Date.now(),
        timer: undefined,
        resolve,
        reject,
      };
      // Fast path: nobody is waiting and a connection can be had now — no queue, no timer.
      if (this.#queue.size === 0 && this.#tryServe(waiter)) return;
      waiter.timer = setTimeout(() => this.#timeout(waiter), this.#checkoutTimeoutMs);
      waiter.timer.unref();
      this.#queue.push(waiter);
      this.#dispatch();
    });
  }

  #counters(target: { tenantId: number; tenantName?: string }): TenantCounters {
    let counters = this.#tenants.get(target.tenantId);
    if (!counters) {
      counters = new TenantCounters(target.tenantId, target.tenantName ?? String(target.tenantId));
      this.#tenants.set(target.tenantId, counters);
    }
    return counters;
  }

  #timeout(waiter: Waiter): void {
    if (!this.#queue.remove(waiter)) return;
    this.#giveUp(waiter);
  }

  /** Fails a checkout with POOL_TIMEOUT (counted against its tenant). */
  #giveUp(waiter: Waiter): void {
    this.#counters(waiter).timeouts++;
    waiter.reject(
      new TenantryError('POOL_TIMEOUT', {
        tenant: waiter.target.tenantName,
        waitedMs: Date.now() - waiter.since,
        server: waiter.target.server,
      }),
    );
  }

  #dispatch(): void {
    // Pools found full in this pass: their other waiters are not offered again until one of their
    // connections comes back (another dispatch), so a long queue for one capped pool costs one
    // check per pass, not one per waiter.
    const full = new Set<string>();
    const serve = (w: Waiter) => !full.has(w.key) && this.#tryServe(w, full);
    while (this.#queue.size > 0 && this.#queue.serveNext(serve)) {
      // served one; try the next
    }
  }

  #tryServe(waiter: Waiter, full?: Set<string>): boolean {
    const counters = this.#counters(waiter);
    if (counters.inUse >= this.#tenantMax()) return false;
    const server = this.#servers.get(waiter.target.server);
    if (!server) {
      clearTimeout(waiter.timer);
      waiter.reject(new TenantryError('SERVER_NOT_FOUND', { server: waiter.target.server }));
      return true;
    }
    const pool = this.#pool(waiter);
    const idle = this.#takeIdle(pool);
    if (idle) {
      this.#hand(waiter, idle, pool);
      return true;
    }
    // A connection of this pool is being reset, or the pool holds all it may: wait for one of its
    // connections to come back.
    const max = waiter.target.maxConnections;
    if (pool.resetting > 0 || (max !== undefined && pool.size >= max)) {
      full?.add(pool.key);
      return false;
    }
    if (server.total >= server.budget) {
      // Close the least recently used idle connection of another pool; the waiter is served
      // once that backend is gone.
      const victim = this.#idleVictim(server.name);
      if (victim) this.#discard(victim.connection, victim.pool);
      return false;
    }
    this.#open(waiter, pool, server);
    return true;
  }

  #pool(waiter: Waiter): IdentityPool {
    let pool = this.#pools.get(waiter.key);
    if (pool) {
      this.#touch(pool);
      return pool;
    }
    pool = new IdentityPool(waiter.key, waiter.target.server, waiter.target.identity, waiter.target.connect);
    this.#pools.set(waiter.key, pool);
    this.#recent = pool;
    if (this.#pools.size > this.#maxPools) {
      for (const candidate of this.#pools.values()) {
        if (this.#pools.size <= this.#maxPools) break;
        if (candidate !== pool && candidate.inUse === 0) this.#closePool(candidate);
      }
    }
    return pool;
  }

  #idleVictim(server: string): { pool: IdentityPool; connection: PooledConnection } | undefined {
    let best: { pool: IdentityPool; connection: PooledConnection } | undefined;
    for (const pool of this.#pools.values()) {
      if (pool.server !== server) continue;
      const oldest = pool.idle[0];
      if (oldest && (!best || oldest.lastUsedAt < best.connection.lastUsedAt))
        best = { pool, connection: oldest };
    }
    return best;
  }

  #open(waiter: Waiter, pool: IdentityPool, server: ServerState): void {
    pool.size++;
    server.total++;
    const counters = this.#counters(waiter);
    counters.inUse++;
    // The checkout timeout holds while the connection is made too (its configuration may wait on
    // a lock, e.g. a tenant's permission role being created): the caller gets POOL_TIMEOUT, and
    // the connection, when it comes, goes to the pool for the next checkout.
    clearTimeout(waiter.timer);
    let timedOut = false;
    const timer = setTimeout(
      () => {
        timedOut = true;
        this.#giveUp(waiter);
      },
      Math.max(0, this.#checkoutTimeoutMs - (Date.now() - waiter.since)),
    );
    timer.unref();
    void this.#connect(pool)
      .then((connection) => {
        clearTimeout(timer);
        counters.inUse--;
        if (pool.closed || this.#closed) {
          this.#discard(connection, pool);
          if (!timedOut) waiter.reject(new TenantryError('CLOSED'));
          return;
        }
        if (timedOut) {
          connection.lastUsedAt = Date.now();
          pool.idle.push(connection);
          this.#dispatch();
          return;
        }
        this.#hand(waiter, connection, pool);
      })
      .catch((error: unknown) => {
        clearTimeout(timer);
        counters.inUse--;
        pool.size--;
        server.total--;
        pool.resetConfig();
        if (!timedOut) waiter.reject(error);
        this.#dispatch();
      });
  }

  #connect(pool: IdentityPool): Promise<PooledConnection> {
    return openConnection(
      pool,
      { connectTimeoutMs: this.#connectTimeoutMs, queryTimeoutMs: this.#queryTimeoutMs },
      (connection, error) => this.#onClientError(connection, error),
    );
  }

  #onClientError(connection: PooledConnection, error: Error): void {
    connection.broken = true;
    this.#logger.debug({ err: error }, 'pooled connection failed');
    const pool = this.#pools.get(connection.poolKey);
    if (pool) {
      const at = pool.idle.indexOf(connection);
      if (at >= 0) {
        pool.idle.splice(at, 1);
        this.#discard(connection, pool);
      }
    }
  }

  #hand(waiter: Waiter, connection: PooledConnection, pool: IdentityPool): void {
    clearTimeout(waiter.timer);
    waiter.resolve(this.#lease(this.#counters(waiter), connection, pool, Date.now() - waiter.since));
  }

  #lease(counters: TenantCounters, connection: PooledConnection, pool: IdentityPool, waited: number): Lease {
    counters.inUse++;
    counters.checkouts++;
    counters.waitMsTotal += waited;
    if (waited > counters.waitMsMax) counters.waitMsMax = waited;
    pool.inUse++;
    pool.lastUsedAt = Date.now();
    connection.uses++;
    return new PoolLease(connection, pool, counters, this.#queryTimeoutMs, this.#onRelease);
  }

  /**
   * Takes a connection back. One that needs a reset stays counted against its tenant and its
   * pool while the reset runs, so checkouts wait for it instead of opening another backend.
   */
  #release(connection: PooledConnection, pool: IdentityPool, counters: TenantCounters): void {
    connection.lastUsedAt = Date.now();
    const worn =
      connection.schemas.size > this.#maxSchemas || (this.#maxUses > 0 && connection.uses >= this.#maxUses);
    if (pool.closed || this.#closed || connection.broken || worn) {
      counters.inUse--;
      this.#discard(connection, pool);
      this.#dispatch();
      return;
    }
    const status = connection.client.getTransactionStatus?.();
    if (!connection.dirty && (status === 'I' || status === null || status === undefined)) {
      counters.inUse--;
      pool.idle.push(connection);
      this.#dispatch();
      return;
    }
    pool.resetting++;
    void resetConnection(connection).then((clean) => {
      pool.resetting--;
      counters.inUse--;
      if (clean && !pool.closed && !this.#closed && !connection.broken) pool.idle.push(connection);
      else this.#discard(connection, pool);
      this.#dispatch();
    });
  }

  /**
   * Closes a connection. It stays counted in its server's budget until its backend is gone, so
   * the budget holds as PostgreSQL counts connections, not only as we do.
   */
  #discard(connection: PooledConnection, pool: IdentityPool): void {
    const at = pool.idle.indexOf(connection);
    if (at >= 0) pool.idle.splice(at, 1);
    pool.size--;
    const server = this.#servers.get(pool.server);
    void connection.destroy().then(() => {
      if (server) server.total--;
      this.#dispatch();
    });
    // Only this pool: a replacement opened under the same key since must stay registered.
    if (pool.closed && pool.size === 0 && this.#pools.get(pool.key) === pool) this.#pools.delete(pool.key);
  }

  #closePool(pool: IdentityPool): void {
    pool.closed = true;
    if (this.#recent === pool) this.#recent = undefined;
    if (this.#pools.get(pool.key) === pool) this.#pools.delete(pool.key);
    for (const connection of [...pool.idle]) this.#discard(connection, pool);
  }

  #sweep(): void {
    const cutoff = Date.now() - this.#idleTimeoutMs;
    for (const pool of [...this.#pools.values()]) {
      for (const connection of [...pool.idle]) {
        if (connection.lastUsedAt < cutoff) this.#discard(connection, pool);
      }
      if (pool.size === 0 && pool.lastUsedAt < cutoff) this.#closePool(pool);
    }
    this.#dispatch();
  }

  /** A snapshot of pools, connections, waiters and per-tenant figures. */
  stats(): PoolStats {
    const servers = [...this.#servers.values()].map((s) => {
      const pools = [...this.#pools.values()].filter((p) => p.server === s.name);
      return {
        server: s.name,
        budget: s.budget,
        total: s.total,
        inUse: pools.reduce((n, p) => n + p.inUse, 0),
        idle: pools.reduce((n, p) => n + p.idle.length, 0),
      };
    });
    const tenants = [...this.#tenants.values()].map((c) => c.snapshot(this.#queue.countFor(c.tenantId)));
    return { pools: this.#pools.size, waiters: this.#queue.size, servers, tenants };
  }

  /** Rejects waiters, closes idle connections now and in-use ones as they are released. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const waiter of this.#queue.drain()) {
      clearTimeout(waiter.timer);
      waiter.reject(new TenantryError('CLOSED'));
    }
    const closing = [...this.#pools.values()].flatMap((pool) => pool.idle.map((c) => c.destroy()));
    for (const pool of [...this.#pools.values()]) this.#closePool(pool);
    await Promise.all(closing);
  }
}
