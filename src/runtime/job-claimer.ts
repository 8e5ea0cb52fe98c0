import type { Tenant } from '../catalog/index.js';
import type { RuntimeConnections } from './connections.js';
import { hasOwnStorage, type RuntimeHost } from './host.js';
import { toClaimed, type ClaimRow, type JobStore } from './job-store.js';
import type { ClaimedJob } from './job-types.js';
import type { PendingTenant, Signals } from './signals.js';

/** What one claim may take. */
export interface ClaimLimits {
  /** Job names this worker can run. */
  readonly names: readonly string[];
  /** Most jobs to claim now. */
  readonly capacity: number;
  /** Most running jobs per tenant (across workers). */
  readonly tenantCap: number;
  readonly leaseMs: number;
  /** Idle poll interval: the first back-off of a tenant that was due but gave nothing. */
  readonly pollMs: number;
}

/** No tenant is backed off longer than this after claims that gave nothing. */
const MAX_BACKOFF_MS = 30_000;

/**
 * One claim cycle of a worker, fair across tenants and isolation models:
 *
 * - shared tenants: ONE statement (tenantry.job_claim) visits tenants with queued jobs in turn
 *   from where the previous claim stopped, and takes every visited tenant's first job before
 *   any tenant's second;
 * - schema and database tenants: the catalog's "has work" table names the tenants with due jobs
 *   (one query, however many tenants), visited in turn; each gets its share of the capacity in
 *   one statement on its own rows;
 * - up to half the capacity is kept for the second group when it has work (alternating for a
 *   capacity of one), so neither group can starve the other.
 */
export class JobClaimer {
  readonly #host: RuntimeHost;
  readonly #store: JobStore;
  readonly #signals: Signals;
  readonly #connections: RuntimeConnections;
  #sharedCursor: number | null = null;
  #ownCursor = -2_147_483_648;
  #cycle = 0;
  /** Until when the catalog said no schema or database tenant has work (ms since the epoch). */
  #idleUntil = 0;
  readonly #hot = new Set<number>();
  readonly #backoff = new Map<number, { until: number; delay: number }>();

  constructor(host: RuntimeHost, store: JobStore, signals: Signals, connections: RuntimeConnections) {
    this.#host = host;
    this.#store = store;
    this.#signals = signals;
    this.#connections = connections;
  }

  /** A notification said `tenantId` enqueued: look at it in the next claim whatever its signal says. */
  notice(tenantId: number): void {
    this.#hot.add(tenantId);
    this.#backoff.delete(tenantId);
  }

  /** Claims up to `limits.capacity` jobs; first jobs of many tenants come before more of one. */
  async claim(limits: ClaimLimits): Promise<ClaimedJob[]> {
    if (limits.capacity < 1 || limits.names.length === 0) return [];
    this.#cycle++;
    const now = Date.now();
    const pending = await this.#pending(limits, now);
    const half = limits.capacity / 2 + (this.#cycle % 2) * 0.5;
    const reserve = Math.min(pending.length, Math.floor(half));
    const shared = await this.#claimShared(limits, limits.capacity - reserve);
    const own = await this.#claimOwn(pending, limits, limits.capacity - shared.length);
    return byTurn([...shared, ...own]);
  }

  /**
   * The schema and database tenants with due work, in turn. The catalog is asked at most once
   * per poll interval while it answered "none" and no such tenant was notified meanwhile.
   */
  async #pending(limits: ClaimLimits, now: number): Promise<PendingTenant[]> {
    const hot = [...this.#hot];
    this.#hot.clear();
    // A notified tenant whose signal row is gone (a drain crossed its enqueue) is visited anyway.
    const notified = hot
      .map((id) => this.#host.catalog.get(id))
      .filter((t): t is Tenant => t !== undefined && t.state === 'active' && hasOwnStorage(t));
    if (notified.length === 0 && now < this.#idleUntil) return [];
    const signalled = await this.#signals.pendingTenants(
      this.#ownCursor,
      Math.max(limits.capacity * 4, 32),
      hot,
    );
    this.#idleUntil = signalled.length === 0 && notified.length === 0 ? now + limits.pollMs : 0;
    const listed = new Set(signalled.map((p) => p.tenantId));
    return [
      ...notified.filter((t) => !listed.has(t.id)).map((t) => ({ tenantId: t.id, signaledAt: '-infinity' })),
      ...signalled,
    ].filter((p) => (this.#backoff.get(p.tenantId)?.until ?? 0) <= now);
  }

  async #claimShared(limits: ClaimLimits, capacity: number): Promise<ClaimedJob[]> {
    if (capacity < 1) return [];
    if (this.#sharedCursor === null) {
      // Workers start at different tenants, so concurrent claims rarely meet on the same rows.
      const ids = this.#host.catalog.tenants().map((t) => t.id);
      this.#sharedCursor = ids[Math.floor(Math.random() * ids.length)] ?? 0;
    }
    const { rows } = await this.#connections.query<ClaimRow & { tenant: number; cursor: boolean }>(
      `SELECT job_tenant AS tenant, job_id AS id, job_name AS name, job_payload AS payload,
              job_attempts AS attempts, job_max_attempts AS max_attempts, job_lease AS lease_token,
              job_run_at AS run_at, job_created_at AS created_at, job_id IS NULL AS cursor
       FROM tenantry.job_claim($1::text[], $2::int, $3::int, $4::int, make_interval(secs => $5), $6::int)`,
      [
        [...limits.names],
        this.#sharedCursor,
        capacity,
        limits.tenantCap,
        limits.leaseMs / 1000,
        capacity * 4 + 64,
      ],
    );
    const jobs: ClaimedJob[] = [];
    for (const row of rows) {
      if (row.cursor) {
        this.#sharedCursor = row.tenant;
        continue;
      }
      // A tenant dropped since the claim has no jobs left to run; the rest of the batch still runs.
      const tenant =
        this.#host.catalog.get(row.tenant) ??
        (await this.#host.resolveTenant(row.tenant).catch((error: unknown) => {
          this.#host.logger.warn({ err: error, tenant: row.tenant }, 'a claimed job’s tenant is gone');
          return undefined;
        }));
      if (tenant) jobs.push(toClaimed(tenant, row));
    }
    return jobs;
  }

  async #claimOwn(
    pending: readonly PendingTenant[],
    limits: ClaimLimits,
    capacity: number,
  ): Promise<ClaimedJob[]> {
    if (capacity < 1 || pending.length === 0) return [];
    const visits: { tenant: Tenant; take: number; seen: string }[] = [];
    const each = Math.floor(capacity / pending.length);
    let extra = capacity % pending.length;
    for (const p of pending) {
      const take = each + (extra > 0 ? 1 : 0);
      if (take < 1) break;
      if (extra > 0) extra--;
      const tenant = this.#host.catalog.get(p.tenantId);
      if (tenant && hasOwnStorage(tenant)) visits.push({ tenant, take, seen: p.signaledAt });
      this.#ownCursor = p.tenantId;
    }
    const results = await Promise.all(
      visits.map(async ({ tenant, take, seen }) => {
        try {
          const { jobs, next } = await this.#store.claim(
            tenant,
            limits.names,
            take,
            limits.tenantCap,
            limits.leaseMs,
          );
          this.#note(tenant.id, jobs.length > 0, limits.pollMs);
          if (next !== undefined) {
            // The jobs are claimed (committed): a failed settle must not lose them.
            await this.#signals
              .settle(tenant, next, seen)
              .catch((error: unknown) =>
                this.#host.logger.warn(
                  { err: error, tenant: tenant.name },
                  'settling a tenant’s job signal failed',
                ),
              );
          }
          return jobs;
        } catch (error) {
          this.#host.logger.warn({ err: error, tenant: tenant.name }, 'claiming jobs of a tenant failed');
          this.#note(tenant.id, false, limits.pollMs);
          return [];
        }
      }),
    );
    return results.flat();
  }

  /** Backs a tenant off while its claims give nothing (e.g. its due jobs have no handler here). */
  #note(tenantId: number, gotJobs: boolean, pollMs: number): void {
    if (gotJobs) {
      this.#backoff.delete(tenantId);
      return;
    }
    const delay = Math.min(MAX_BACKOFF_MS, (this.#backoff.get(tenantId)?.delay ?? pollMs / 2) * 2);
    this.#backoff.set(tenantId, { until: Date.now() + delay, delay });
  }
}

/** Orders jobs so that each tenant's first job comes before any tenant's second (stable otherwise). */
function byTurn(jobs: readonly ClaimedJob[]): ClaimedJob[] {
  const seen = new Map<number, number>();
  return jobs
    .map((job, index) => {
      const rank = (seen.get(job.tenant.id) ?? 0) + 1;
      seen.set(job.tenant.id, rank);
      return { job, rank, index };
    })
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((entry) => entry.job);
}
