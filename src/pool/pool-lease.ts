import type pg from 'pg';
import type { IdentityPool, TenantCounters } from './pool-state.js';
import type { PooledConnection } from './pooled-connection.js';
import type { Lease } from './types.js';

/**
 * One checkout of a pooled connection: a single object per checkout (no closures), since the
 * gateway checks out once per transaction.
 */
export class PoolLease implements Lease {
  readonly client: pg.Client;
  readonly queryTimeoutMs: number;
  readonly connection: PooledConnection;
  readonly pool: IdentityPool;
  readonly counters: TenantCounters;
  #onRelease: ((lease: PoolLease) => void) | undefined;

  constructor(
    connection: PooledConnection,
    pool: IdentityPool,
    counters: TenantCounters,
    queryTimeoutMs: number,
    onRelease: (lease: PoolLease) => void,
  ) {
    this.client = connection.client;
    this.connection = connection;
    this.pool = pool;
    this.counters = counters;
    this.queryTimeoutMs = queryTimeoutMs;
    this.#onRelease = onRelease;
  }

  noteSchema(schema: string): void {
    this.connection.schemas.add(schema);
  }

  markDirty(): void {
    this.connection.dirty = true;
  }

  markBroken(): void {
    this.connection.broken = true;
  }

  release(): void {
    const onRelease = this.#onRelease;
    if (!onRelease) return;
    this.#onRelease = undefined;
    onRelease(this);
  }
}
