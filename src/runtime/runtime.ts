import type { Tenant } from '../catalog/index.js';
import { CacheRegistry } from './caches.js';
import { RuntimeConnections } from './connections.js';
import { EventLog } from './events.js';
import type { RuntimeHost } from './host.js';
import { IdGenerators } from './ids.js';
import { JobAdmin } from './job-admin.js';
import { JobClaimer } from './job-claimer.js';
import { JobStore } from './job-store.js';
import type { StopOptions } from './job-types.js';
import { JobQueue } from './jobs.js';
import { RuntimeProvisioner } from './provision.js';
import { Signals } from './signals.js';
import type { CacheOptions, TenantCache } from './tenant-cache.js';

/**
 * The per-tenant runtime services of one tenantry instance (seed 003: what a multi-tenant
 * engine keeps per tenant besides the datasource): tenant-scoped caches, jobs and timers, the
 * event outbox and hi/lo id generators. Nothing connects until a service is used.
 */
export class Runtime {
  /** Jobs and timers per tenant. */
  readonly jobs: JobQueue;
  /** The per-tenant event outbox and its subscribers. */
  readonly events: EventLog;
  /** Per-tenant, per-entity hi/lo id generators. */
  readonly ids: IdGenerators;
  readonly #caches: CacheRegistry;
  readonly #connections: RuntimeConnections;
  readonly #provisioner: RuntimeProvisioner;
  readonly #stopWatching: () => void;
  #prune: NodeJS.Timeout | undefined;

  constructor(host: RuntimeHost) {
    this.#connections = new RuntimeConnections({
      databaseUrl: host.databaseUrl,
      maintRole: host.roles.maint,
      logger: host.logger,
    });
    this.#provisioner = new RuntimeProvisioner(host);
    const signals = new Signals(this.#connections, host, this.#provisioner);
    const store = new JobStore(host, this.#provisioner, signals, this.#connections);
    const claimer = new JobClaimer(host, store, signals, this.#connections);
    const admin = new JobAdmin(host, store, this.#provisioner, this.#connections);
    this.jobs = new JobQueue({ host, store, claimer, signals, connections: this.#connections }, admin);
    this.events = new EventLog(host, this.#provisioner, signals, this.#connections);
    this.ids = new IdGenerators(host, this.#provisioner);
    this.#caches = new CacheRegistry(host.catalog, this.#connections, host.logger);
    // Catalog change listeners run before the re-read: prune once it has had time to finish.
    this.#stopWatching = host.catalog.onChange(() => {
      if (this.#prune) return;
      this.#prune = setTimeout(() => {
        this.#prune = undefined;
        this.#caches.prune();
      }, 250);
      this.#prune.unref();
    });
  }

  /**
   * The tenant-scoped cache `name` (created on first call; later calls must pass the same
   * options). Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name or options.
   */
  cache<V extends NonNullable<unknown>>(name: string, options: CacheOptions): TenantCache<V> {
    return this.#caches.get<V>(name, options);
  }

  /** Forgets a dropped tenant at once: its cache entries, id blocks and provisioning state. */
  forget(tenant: Tenant): void {
    this.#caches.forget(tenant);
    this.ids.forget(tenant);
    this.#provisioner.forget(tenant);
  }

  /**
   * Stops workers (running jobs get `timeoutMs`, default 10 s, to finish; then their leases are
   * released) and subscriptions, and closes the runtime's connections.
   */
  async close(options: StopOptions = {}): Promise<void> {
    this.#stopWatching();
    if (this.#prune) clearTimeout(this.#prune);
    await Promise.all([this.jobs.stop(options), this.events.stop()]);
    await this.#connections.close();
  }
}
