import type { Tenant } from '../catalog/index.js';
import type { Logger } from '../logger.js';
import type { RuntimeConnections } from './connections.js';
import { runtimeTables, type RuntimeHost } from './host.js';
import type { RuntimeProvisioner } from './provision.js';

/** The channel enqueues notify on (payload: the tenant id). */
export const JOBS_CHANNEL = 'tenantry_jobs';
/** The channel publishes notify on (payload: the tenant id). */
export const EVENTS_CHANNEL = 'tenantry_events';

/** A schema or database tenant with jobs due, as the catalog's "has work" table says. */
export interface PendingTenant {
  readonly tenantId: number;
  /**
   * When the row was last signalled, as PostgreSQL's text (microseconds: a JavaScript Date would
   * round them off): a settle after a newer signal is skipped.
   */
  readonly signaledAt: string;
}

/** How long after its last signal a tenant's pending row stays (its enqueue may not have committed yet). */
const LINGER_MS = 30_000;

/**
 * The catalog-level "has work" signals of tenants whose jobs and events live in their own schema
 * or database: workers and subscribers read one small catalog table per tick instead of querying
 * every tenant. Shared and schema tenants signal inside their own transactions (SQL functions
 * job_signal / event_signal); database tenants' statements run in another database, so the
 * library signals right after them, and a periodic sweep re-reads those tenants as a safety net.
 */
export class Signals {
  readonly #connections: RuntimeConnections;
  readonly #host: RuntimeHost;
  readonly #provisioner: RuntimeProvisioner;
  readonly #logger: Logger;

  constructor(connections: RuntimeConnections, host: RuntimeHost, provisioner: RuntimeProvisioner) {
    this.#connections = connections;
    this.#host = host;
    this.#provisioner = provisioner;
    this.#logger = host.logger;
  }

  /** Marks `tenant` as having jobs due at `due` and wakes workers (schema and database tenants). */
  async jobDue(tenant: Tenant, due: Date): Promise<void> {
    await this.#connections.query('SELECT tenantry.job_signal_tenant($1, $2)', [tenant.id, due]);
  }

  /**
   * {@link jobDue} after a database tenant's enqueue: a hint only. The jobs are already stored
   * in the tenant's database, so a failure is logged, not thrown (a caller retrying would
   * enqueue twice); the periodic sweep of database tenants finds them.
   */
  async hintJobDue(tenant: Tenant, due: Date): Promise<void> {
    await this.jobDue(tenant, due).catch((error: unknown) => this.#lostHint(tenant, error));
  }

  /** Records that `tenant` published up to `position` and wakes subscribers (database tenants); a hint, as {@link hintJobDue}. */
  async eventHead(tenant: Tenant, position: bigint): Promise<void> {
    await this.#connections
      .query(
        `WITH hint AS (
           INSERT INTO tenantry.event_hint AS h (tenant_id, position) VALUES ($1, $2)
           ON CONFLICT (tenant_id) DO UPDATE SET position = greatest(h.position, EXCLUDED.position))
         SELECT pg_notify($3, $1::text)`,
        [tenant.id, position.toString(), EVENTS_CHANNEL],
      )
      .catch((error: unknown) => this.#lostHint(tenant, error));
  }

  #lostHint(tenant: Tenant, error: unknown): void {
    this.#logger.warn(
      { err: error, tenant: tenant.name },
      'could not signal new work of a database tenant; the runtime sweep will find it',
    );
  }

  /**
   * Active tenants whose jobs are due (or that were just notified: `hot`), in turn after
   * `after` (wrapping around), at most `limit`.
   */
  async pendingTenants(after: number, limit: number, hot: readonly number[]): Promise<PendingTenant[]> {
    const { rows } = await this.#connections.query<{ tenant_id: number; signaled_at: string }>(
      `SELECT p.tenant_id, p.signaled_at::text FROM tenantry.job_pending p
       JOIN tenantry.tenant t ON t.id = p.tenant_id AND t.state = 'active'
       WHERE p.due_at <= now() OR p.tenant_id = ANY ($3::integer[])
       ORDER BY p.tenant_id <= $1, p.tenant_id LIMIT $2`,
      [after, limit, [...hot]],
    );
    return rows.map((r) => ({ tenantId: r.tenant_id, signaledAt: r.signaled_at }));
  }

  /**
   * After a claim left `tenant` with nothing due now: its next due time (`next`), or no work at
   * all (`null`: the row goes, once it has lingered, for enqueues that had not committed). A
   * signal newer than `seen` wins.
   */
  async settle(tenant: Tenant, next: Date | null, seen: string): Promise<void> {
    if (next === null) {
      // Schema tenants linger too: an enqueue that found an earlier due time already signalled
      // writes (and locks) nothing, so a claim that ran before it committed saw no job, and
      // without the linger only its NOTIFY would bring a worker back.
      await this.#connections.query(
        `WITH gone AS (
           DELETE FROM tenantry.job_pending WHERE tenant_id = $1 AND signaled_at <= $2::timestamptz
             AND signaled_at < now() - make_interval(secs => $3) RETURNING 1)
         UPDATE tenantry.job_pending SET due_at = now() + interval '5 seconds'
         WHERE tenant_id = $1 AND signaled_at <= $2::timestamptz AND NOT EXISTS (SELECT 1 FROM gone)`,
        [tenant.id, seen, LINGER_MS / 1000],
      );
      return;
    }
    await this.#connections.query(
      `INSERT INTO tenantry.job_pending AS p (tenant_id, due_at, signaled_at) VALUES ($1, $2, $3::timestamptz)
       ON CONFLICT (tenant_id) DO UPDATE SET due_at = EXCLUDED.due_at WHERE p.signaled_at <= $3::timestamptz`,
      [tenant.id, next, seen],
    );
  }

  /**
   * Re-reads every active database tenant's next job and last event position into the signals
   * (one query per database tenant): after a crash between a statement and its signal, work is
   * found within one sweep.
   */
  async sweepDatabaseTenants(what: { jobs: boolean; events: boolean }): Promise<void> {
    const tenants = this.#host.catalog
      .tenants()
      .filter((t) => t.state === 'active' && runtimeTables(t).placement === 'database');
    for (const tenant of tenants) {
      try {
        await this.#provisioner.ensure(tenant);
        const t = runtimeTables(tenant);
        const { rows } = await this.#host
          .bookkeeping(tenant)
          .query<{ due: Date | null; head: string | null }>(
            `SELECT (SELECT least(min(run_at) FILTER (WHERE state = 'queued'), min(lease_until) FILTER (WHERE state = 'running'))
                   FROM ${t.job}) AS due,
                  (SELECT position::text FROM ${t.eventHead}) AS head`,
          );
        const row = rows[0];
        if (what.jobs && row?.due) await this.jobDue(tenant, row.due);
        if (what.events && row?.head) await this.eventHead(tenant, BigInt(row.head));
      } catch (error) {
        this.#logger.warn(
          { err: error, tenant: tenant.name },
          'runtime sweep could not read a database tenant',
        );
      }
    }
  }
}
