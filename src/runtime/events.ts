import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { RuntimeConnections } from './connections.js';
import { EventSubscription, type EventHandler, type SubscribeOptions } from './event-subscription.js';
import { runtimeTables, type RuntimeHost } from './host.js';
import type { RuntimeProvisioner } from './provision.js';
import type { Signals } from './signals.js';

/** A published event, as `publish` answers it. */
export interface EventRef {
  readonly tenant: Tenant;
  /** Its position in the tenant's outbox: 1, 2, 3, … in commit order. */
  readonly position: bigint;
}

const TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;
const SUBSCRIBER = /^[A-Za-z][A-Za-z0-9_.:-]{0,62}$/;

/**
 * The per-tenant event outbox (`tenantry.events`). `publish` appends an event to the current
 * tenant's outbox inside the caller's transaction (it exists only if the transaction commits);
 * positions are taken under the tenant's head row lock, so they follow commit order (a serial
 * id alone does not: a lower id can commit after a higher one a reader already passed).
 * Publishing transactions of one tenant therefore queue on each other from the publish to their
 * commit; other tenants are not affected. `subscribe` delivers every tenant's events in order,
 * at least once, resuming from the last acknowledged position. See docs/runtime.md.
 */
export class EventLog {
  readonly #host: RuntimeHost;
  readonly #provisioner: RuntimeProvisioner;
  readonly #signals: Signals;
  readonly #connections: RuntimeConnections;
  readonly #subscriptions = new Set<EventSubscription>();

  constructor(
    host: RuntimeHost,
    provisioner: RuntimeProvisioner,
    signals: Signals,
    connections: RuntimeConnections,
  ) {
    this.#host = host;
    this.#provisioner = provisioner;
    this.#signals = signals;
    this.#connections = connections;
  }

  /**
   * Appends an event of `type` with a JSON `payload` to the current tenant's outbox (joining the
   * context's open transaction). Throws `TENANTRY_ERR_NO_TENANT` outside a tenant context and
   * `TENANTRY_ERR_INVALID_ARGUMENT` for a bad type or payload.
   */
  async publish(type: string, payload?: unknown): Promise<EventRef> {
    if (typeof type !== 'string' || !TYPE.test(type)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'event type',
        problem: `${JSON.stringify(type)} must start with a letter (letters, digits, _ . : -, at most 128)`,
      });
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(payload ?? null);
    } catch {
      text = undefined;
    }
    if (text === undefined || text.length > 1_000_000) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'event payload',
        problem: 'expected JSON of at most 1,000,000 characters',
      });
    }
    const db = this.#host.currentDb();
    const tenant = db.tenant;
    await this.#provisioner.ensure(tenant);
    const t = runtimeTables(tenant);
    const inline = t.placement !== 'database';
    const { rows } = await db.query<{ position: string }>(
      `WITH head AS (
         INSERT INTO ${t.eventHead} AS h (position) VALUES (1)
         ON CONFLICT (tenant_id) DO UPDATE SET position = h.position + 1 RETURNING position),
       e AS (INSERT INTO ${t.event} (position, type, payload) SELECT position, $1, $2::jsonb FROM head RETURNING position)
       SELECT position::text${inline ? ', tenantry.event_signal(position)' : ''} FROM e`,
      [type, text],
    );
    const position = BigInt(rows[0]?.position ?? '0');
    if (!inline) await this.#signals.eventHead(tenant, position);
    return { tenant, position };
  }

  /**
   * Delivers every tenant's events to `handler` under the durable subscriber name `name`: per
   * tenant in position order, at least once (an event whose handler failed or whose process died
   * before acknowledging it comes again), resuming after the last acknowledged position. The
   * handler runs as the event's tenant. One process at a time delivers a given tenant's events
   * for a name. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name or options.
   */
  subscribe(name: string, handler: EventHandler, options: SubscribeOptions = {}): EventSubscription {
    if (typeof name !== 'string' || !SUBSCRIBER.test(name)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'subscriber name',
        problem: `${JSON.stringify(name)} must start with a letter (letters, digits, _ . : -, at most 63)`,
      });
    }
    if (typeof handler !== 'function') {
      throw new TenantryError('INVALID_ARGUMENT', { what: 'event handler', problem: 'expected a function' });
    }
    const subscription = new EventSubscription(
      {
        host: this.#host,
        provisioner: this.#provisioner,
        signals: this.#signals,
        connections: this.#connections,
      },
      name,
      handler,
      options,
    );
    this.#subscriptions.add(subscription);
    subscription.start(() => this.#subscriptions.delete(subscription));
    return subscription;
  }

  /** Stops every subscription (on `tenantry.close()`). */
  async stop(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.stop()));
  }
}
