import type pg from 'pg';

/** Where and as whom a pool connects, and on whose behalf a checkout is made. */
export interface PoolTarget {
  /** Registered server name (`main` for the catalog's own server). */
  readonly server: string;
  /** Identity the connections log in as, e.g. `app` (shared role) or `tenant:5` (its own role). */
  readonly identity: string;
  /** Tenant the checkout is for: fairness, the per-tenant cap and statistics use it. */
  readonly tenantId: number;
  readonly tenantName: string;
  /**
   * Connection settings, asked for once when the pool is created (a credential is decrypted
   * only then) and again only after a connection attempt failed.
   */
  readonly connect: () => pg.ClientConfig | Promise<pg.ClientConfig>;
  /**
   * Connections this target's pool may hold at most (within the server's budget); checkouts
   * beyond it wait for one of them. Unset: only the budget and the per-tenant cap apply.
   */
  readonly maxConnections?: number;
}

/** A checked-out connection. Call `release()` exactly once. */
export interface Lease {
  readonly client: pg.Client;
  /** Records that this backend served `schema` (recycled after too many distinct schemas). */
  noteSchema(schema: string): void;
  /** Records that session state may have been left behind: reset before reuse. */
  markDirty(): void;
  /** Records that the connection failed: it is discarded on release. */
  markBroken(): void;
  /** Returns the connection (reset as needed) or discards it. */
  release(): void;
  /**
   * The pool's client-side statement limit in ms (0: none), for faces that drive the backend
   * socket themselves (the gateway): a backend silent that long while an answer is owed is lost.
   */
  readonly queryTimeoutMs?: number;
}

/** Tuning of the pool manager; every field has a default. */
export interface PoolManagerOptions {
  /** Connections one tenant may hold at once (default: a quarter of the smallest budget, ≥ 1). */
  readonly perTenantMax?: number;
  /** Live pools kept at most; the least recently used idle pool is closed beyond it (default 1,000). */
  readonly maxPools?: number;
  /** Idle connections are closed after this many ms (default 30 s). */
  readonly idleTimeoutMs?: number;
  /** How long a checkout may wait (default 10 s); then `TENANTRY_ERR_POOL_TIMEOUT`. */
  readonly checkoutTimeoutMs?: number;
  /**
   * How long opening one backend connection may take before it is abandoned with
   * `TENANTRY_ERR_DATABASE_UNREACHABLE` (default: the checkout timeout).
   */
  readonly connectTimeoutMs?: number;
  /**
   * Client-side limit of one statement on a pooled connection, for a server that stops
   * answering (a dead network path): the statement fails with `Query read timeout` and the
   * connection is discarded. Default 0: no limit (use a statement_timeout for slow queries).
   */
  readonly queryTimeoutMs?: number;
  /** A backend is recycled after serving this many distinct schemas (default 100). */
  readonly maxSchemasPerConnection?: number;
  /** A backend is recycled after this many checkouts (default 0: never). */
  readonly maxUsesPerConnection?: number;
}

/** Per-tenant pool figures. */
export interface TenantPoolStats {
  readonly tenantId: number;
  readonly tenantName: string;
  readonly inUse: number;
  readonly waiting: number;
  readonly checkouts: number;
  readonly timeouts: number;
  /** Total and largest time checkouts spent waiting, in ms. */
  readonly waitMsTotal: number;
  readonly waitMsMax: number;
}

/** Per-server pool figures. */
export interface ServerPoolStats {
  readonly server: string;
  readonly budget: number;
  /** Open or opening connections. */
  readonly total: number;
  readonly inUse: number;
  readonly idle: number;
}

/** A snapshot of the pool manager, for metrics. */
export interface PoolStats {
  readonly pools: number;
  readonly waiters: number;
  readonly servers: readonly ServerPoolStats[];
  readonly tenants: readonly TenantPoolStats[];
}
