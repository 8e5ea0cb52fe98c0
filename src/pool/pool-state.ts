import type pg from 'pg';
import type { PooledConnection } from './pooled-connection.js';
import type { TenantPoolStats } from './types.js';

/** One (server, identity) pool: its idle connections and how many it has open. */
export class IdentityPool {
  readonly key: string;
  readonly server: string;
  readonly identity: string;
  readonly #connect: () => pg.ClientConfig | Promise<pg.ClientConfig>;
  #config: Promise<pg.ClientConfig> | undefined;
  /** Idle connections, most recently used last. */
  readonly idle: PooledConnection[] = [];
  /** Open or opening connections of this pool (idle, in use, or being reset). */
  size = 0;
  inUse = 0;
  /** Connections being reset before they return to `idle`. */
  resetting = 0;
  lastUsedAt = Date.now();
  closed = false;

  constructor(
    key: string,
    server: string,
    identity: string,
    connect: () => pg.ClientConfig | Promise<pg.ClientConfig>,
  ) {
    this.key = key;
    this.server = server;
    this.identity = identity;
    this.#connect = connect;
  }

  /** Connection settings, computed once per pool (credentials are decrypted only here). */
  config(): Promise<pg.ClientConfig> {
    this.#config ??= Promise.resolve().then(() => this.#connect());
    return this.#config;
  }

  /** Forgets the settings so the next connection asks again (after a failed attempt). */
  resetConfig(): void {
    this.#config = undefined;
  }
}

/** A server's connection budget and how much of it is spent. */
export class ServerState {
  readonly name: string;
  budget: number;
  total = 0;

  constructor(name: string, budget: number) {
    this.name = name;
    this.budget = budget;
  }
}

/** Running counters of one tenant. */
export class TenantCounters {
  readonly tenantId: number;
  name: string;
  inUse = 0;
  checkouts = 0;
  timeouts = 0;
  waitMsTotal = 0;
  waitMsMax = 0;

  constructor(tenantId: number, name: string) {
    this.tenantId = tenantId;
    this.name = name;
  }

  snapshot(waiting: number): TenantPoolStats {
    return {
      tenantId: this.tenantId,
      tenantName: this.name,
      inUse: this.inUse,
      waiting,
      checkouts: this.checkouts,
      timeouts: this.timeouts,
      waitMsTotal: this.waitMsTotal,
      waitMsMax: this.waitMsMax,
    };
  }
}
