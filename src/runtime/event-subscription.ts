import { randomUUID } from 'node:crypto';
import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { RuntimeConnections } from './connections.js';
import { runtimeTables, type RuntimeHost } from './host.js';
import type { RuntimeProvisioner } from './provision.js';
import { EVENTS_CHANNEL, type Signals } from './signals.js';
import { Waker } from './waker.js';

/** An event as a subscriber receives it. */
export interface TenantEvent {
  readonly tenant: Tenant;
  /** 1, 2, 3, … per tenant, in commit order. */
  readonly position: bigint;
  readonly type: string;
  readonly payload: unknown;
  readonly createdAt: Date;
}

/** Handles one event; runs as the event's tenant. A throw means "deliver it again later". */
export type EventHandler = (event: TenantEvent) => Promise<void>;

/** Options of `events.subscribe`. */
export interface SubscribeOptions {
  /** Events read per tenant at a time (default 100). */
  readonly batchSize?: number;
  /** Tenants delivered at once (default 4); one tenant's events are always delivered one by one. */
  readonly concurrency?: number;
  /** Poll interval when idle, in ms (default 500; notifications wake the subscriber sooner). */
  readonly pollMs?: number;
  /** How long this process keeps a tenant's delivery without renewing it, in ms (default 30 s). */
  readonly leaseMs?: number;
  /** How often database tenants' outboxes are re-read for lost signals, in ms (default 60 s). */
  readonly sweepMs?: number;
}

/** What a subscription needs. */
export interface SubscriptionDeps {
  readonly host: RuntimeHost;
  readonly provisioner: RuntimeProvisioner;
  readonly signals: Signals;
  readonly connections: RuntimeConnections;
}

function option(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000_000) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: `subscription ${what}`,
      problem: 'expected a positive integer',
    });
  }
  return n;
}

/**
 * A running subscription: finds tenants whose outbox is ahead of the subscriber's acknowledged
 * position (one catalog query per poll, however many tenants), takes a lease on each tenant's
 * delivery, reads its events in position order under row-level security for that tenant, runs
 * the handler as the tenant, and acknowledges the last handled position.
 */
export class EventSubscription {
  /** The durable subscriber name. */
  readonly name: string;
  readonly #deps: SubscriptionDeps;
  readonly #handler: EventHandler;
  readonly #batch: number;
  readonly #concurrency: number;
  readonly #pollMs: number;
  readonly #leaseMs: number;
  readonly #sweepMs: number;
  readonly #owner = randomUUID();
  readonly #waker = new Waker();
  readonly #backoff = new Map<number, { until: number; delay: number }>();
  #cursor = -2_147_483_648;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #cleanup: (() => void)[] = [];

  constructor(deps: SubscriptionDeps, name: string, handler: EventHandler, options: SubscribeOptions) {
    this.#deps = deps;
    this.name = name;
    this.#handler = handler;
    this.#batch = option(options.batchSize, 100, 'batchSize');
    this.#concurrency = option(options.concurrency, 4, 'concurrency');
    this.#pollMs = option(options.pollMs, 500, 'pollMs');
    this.#leaseMs = option(options.leaseMs, 30_000, 'leaseMs');
    this.#sweepMs = option(options.sweepMs, 60_000, 'sweepMs');
  }

  /** Starts listening and delivering; `onStop` runs when it stops. */
  start(onStop: () => void): void {
    this.#cleanup.push(onStop);
    void this.#deps.connections
      .listen(EVENTS_CHANNEL, (payload) => {
        this.#backoff.delete(Number(payload));
        this.#waker.wake();
      })
      .then((unlisten) => (this.#stopped ? unlisten() : this.#cleanup.push(unlisten)))
      .catch((error: unknown) => this.#deps.host.logger.warn({ err: error }, 'event listener failed'));
    const sweep = () =>
      void this.#deps.signals
        .sweepDatabaseTenants({ jobs: false, events: true })
        .catch((error: unknown) => this.#deps.host.logger.warn({ err: error }, 'event sweep failed'));
    sweep();
    const timer = setInterval(sweep, this.#sweepMs);
    timer.unref();
    this.#cleanup.push(() => clearInterval(timer));
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      let tenants: number[] = [];
      try {
        tenants = await this.#candidates();
      } catch (error) {
        this.#deps.host.logger.warn({ err: error, subscriber: this.name }, 'polling events failed');
      }
      if (tenants.length === 0) {
        await this.#waker.wait(this.#pollMs);
        continue;
      }
      for (let i = 0; i < tenants.length && !this.#stopped; i += this.#concurrency) {
        await Promise.all(tenants.slice(i, i + this.#concurrency).map((id) => this.#deliver(id)));
      }
      this.#cursor = tenants[tenants.length - 1] ?? this.#cursor;
    }
  }

  /** Active tenants with events past this subscriber's position that no other process delivers now. */
  async #candidates(): Promise<number[]> {
    const { rows } = await this.#deps.connections.query<{ tenant_id: number }>(
      `SELECT h.tenant_id FROM tenantry.event_hint h
       JOIN tenantry.tenant t ON t.id = h.tenant_id AND t.state = 'active'
       LEFT JOIN tenantry.event_ack a ON a.subscriber = $1 AND a.tenant_id = h.tenant_id
       WHERE h.position > coalesce(a.position, 0) AND (a.owner IS NULL OR a.owner = $2 OR a.lease_until < now())
       ORDER BY h.tenant_id <= $3, h.tenant_id LIMIT $4`,
      [this.name, this.#owner, this.#cursor, this.#concurrency * 4],
    );
    const now = Date.now();
    return rows.map((r) => r.tenant_id).filter((id) => (this.#backoff.get(id)?.until ?? 0) <= now);
  }

  async #deliver(tenantId: number): Promise<void> {
    const tenant = this.#deps.host.catalog.get(tenantId);
    if (!tenant || tenant.state !== 'active') return;
    try {
      const { rows: lease } = await this.#deps.connections.query<{ position: string }>(
        `INSERT INTO tenantry.event_ack AS a (subscriber, tenant_id, owner, lease_until)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))
         ON CONFLICT (subscriber, tenant_id) DO UPDATE SET owner = $3, lease_until = EXCLUDED.lease_until
         WHERE a.owner IS NULL OR a.owner = $3 OR a.lease_until < now()
         RETURNING position::text`,
        [this.name, tenantId, this.#owner, this.#leaseMs / 1000],
      );
      if (!lease[0]) return;
      let acked = BigInt(lease[0].position);
      await this.#deps.provisioner.ensure(tenant);
      const { rows } = await this.#deps.host
        .bookkeeping(tenant)
        .query<{ position: string; type: string; payload: unknown; created_at: Date }>(
          `SELECT position::text, type, payload, created_at FROM ${runtimeTables(tenant).event}
           WHERE position > $1 ORDER BY position LIMIT $2`,
          [acked.toString(), this.#batch],
        );
      let failed = rows.length === 0;
      let renewed = Date.now();
      for (const row of rows) {
        if (this.#stopped) break;
        const event = {
          tenant,
          position: BigInt(row.position),
          type: row.type,
          payload: row.payload,
          createdAt: row.created_at,
        };
        // A handler may outlast the lease: it is renewed meanwhile (at the last acknowledged
        // position), so no other process takes the tenant and delivers out of order.
        let lost = false;
        const keepAlive = setInterval(() => {
          this.#ack(tenantId, acked).then(
            (held) => {
              if (!held) lost = true;
              renewed = Date.now();
            },
            (error: unknown) =>
              this.#deps.host.logger.warn(
                { err: error, subscriber: this.name },
                'renewing an event lease failed',
              ),
          );
        }, this.#leaseMs / 3);
        keepAlive.unref();
        try {
          await this.#deps.host.withTenant(tenant, () => this.#handler(event));
        } catch (error) {
          this.#deps.host.logger.warn(
            { err: error, subscriber: this.name, tenant: tenant.name, position: row.position },
            'event handler failed; delivering it again later',
          );
          failed = true;
          break;
        } finally {
          clearInterval(keepAlive);
        }
        // Lost while the handler ran: another process delivers from the last acknowledged event.
        if (lost) return;
        acked = event.position;
        if (Date.now() - renewed > this.#leaseMs / 3) {
          if (!(await this.#ack(tenantId, acked))) return;
          renewed = Date.now();
        }
      }
      await this.#ack(tenantId, acked);
      this.#note(tenantId, failed);
    } catch (error) {
      this.#deps.host.logger.warn(
        { err: error, subscriber: this.name, tenant: tenant.name },
        'delivering events failed',
      );
      this.#note(tenantId, true);
    }
  }

  /** Records `position` as handled and renews the lease; false when the lease was lost. */
  async #ack(tenantId: number, position: bigint): Promise<boolean> {
    const { rowCount } = await this.#deps.connections.query(
      `UPDATE tenantry.event_ack SET position = greatest(position, $3::bigint), lease_until = now() + make_interval(secs => $5)
       WHERE subscriber = $1 AND tenant_id = $2 AND owner = $4`,
      [this.name, tenantId, position.toString(), this.#owner, this.#leaseMs / 1000],
    );
    return rowCount === 1;
  }

  /** Backs a tenant off after a failure or an empty read (a database tenant's hint ran ahead). */
  #note(tenantId: number, failed: boolean): void {
    if (!failed) {
      this.#backoff.delete(tenantId);
      return;
    }
    const delay = Math.min(30_000, (this.#backoff.get(tenantId)?.delay ?? this.#pollMs / 2) * 2);
    this.#backoff.set(tenantId, { until: Date.now() + delay, delay });
  }

  /** Stops delivering (the event being handled finishes) and gives up this process's leases. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#waker.wake();
    await this.#loop;
    for (const fn of this.#cleanup.splice(0)) fn();
    await this.#deps.connections
      .query(
        'UPDATE tenantry.event_ack SET owner = NULL, lease_until = NULL WHERE subscriber = $1 AND owner = $2',
        [this.name, this.#owner],
      )
      .catch((error: unknown) =>
        this.#deps.host.logger.warn({ err: error }, 'could not release event leases'),
      );
  }
}
