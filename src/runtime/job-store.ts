import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { TenantDb } from '../session/index.js';
import type { RuntimeConnections } from './connections.js';
import { runtimeTables, type RuntimeHost } from './host.js';
import type { ClaimedJob } from './job-types.js';
import type { RuntimeProvisioner } from './provision.js';
import { JOBS_CHANNEL, type Signals } from './signals.js';

/** A claimed job row as the claim statements return it. */
export interface ClaimRow {
  id: string;
  name: string;
  payload: unknown;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  run_at: Date;
  created_at: Date;
}

/** Turns a claimed row of `tenant` into a {@link ClaimedJob}. */
export function toClaimed(tenant: Tenant, row: ClaimRow): ClaimedJob {
  return {
    tenant,
    id: row.id,
    name: row.name,
    payload: row.payload,
    attempt: row.attempts,
    maxAttempts: row.max_attempts,
    lease: row.lease_token,
    runAt: row.run_at,
    createdAt: row.created_at,
  };
}

/** The tenant cap that means "no cap" (workers without `tenantConcurrency`). */
export const NO_CAP = 2_147_483_647;

const EXPIRED = "'lease expired: the worker stopped or lost its connection during the job'";

/**
 * The job statements that run on one tenant's own rows — under the application role and
 * row-level security for that tenant, wherever the rows live (catalog, schema, own database).
 */
export class JobStore {
  readonly #host: RuntimeHost;
  readonly #provisioner: RuntimeProvisioner;
  readonly #signals: Signals;
  readonly #connections: RuntimeConnections;

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
   * Inserts jobs through `db` (joining its open transaction: the jobs then exist only if it
   * commits) and signals workers. Answers the jobs' ids and run times.
   */
  async enqueue(
    db: TenantDb,
    name: string,
    payloads: readonly string[],
    runAt: Date | null,
    maxAttempts: number,
  ): Promise<{ id: string; runAt: Date }[]> {
    const tenant = db.tenant;
    await this.#provisioner.ensure(tenant);
    const t = runtimeTables(tenant);
    const inline = t.placement !== 'database';
    const { rows } = await db.query<{ id: string; run_at: Date }>(
      `WITH j AS (
         INSERT INTO ${t.job} (name, payload, run_at, max_attempts)
         SELECT $1, p::jsonb, coalesce($3::timestamptz, now()), $4 FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n)
         ORDER BY n RETURNING id, run_at),
       s AS (SELECT ${inline ? 'tenantry.job_signal(min(run_at))' : 'min(run_at)'} FROM j)
       SELECT j.id, j.run_at FROM j, s`,
      [name, [...payloads], runAt, maxAttempts],
    );
    const first = rows[0];
    if (!inline && first) await this.#signals.hintJobDue(tenant, first.run_at);
    return rows.map((r) => ({ id: r.id, runAt: r.run_at }));
  }

  /**
   * Claims up to `take` due jobs named in `names` of one schema or database tenant (at most
   * `cap` running at once), first returning its expired leases to the queue. Answers the jobs
   * and, when fewer than `take` came, the tenant's next due time (null: no work left).
   */
  async claim(
    tenant: Tenant,
    names: readonly string[],
    take: number,
    cap: number,
    leaseMs: number,
  ): Promise<{ jobs: ClaimedJob[]; next: Date | null | undefined }> {
    await this.#provisioner.ensure(tenant);
    const { job } = runtimeTables(tenant);
    const db = this.#host.bookkeeping(tenant);
    // A per-tenant cap costs a count of the running jobs; without a cap there is none.
    const limit =
      cap < NO_CAP
        ? `greatest(0, least($2::int, $3::int - (SELECT count(*) FROM ${job} r WHERE r.state = 'running')::int))`
        : 'least($2::int, $3::int)';
    const { rows } = await db.query<ClaimRow>(
      `WITH reaped AS (
         UPDATE ${job} j SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
           lease_token = NULL, lease_until = NULL, updated_at = now(), last_error = ${EXPIRED}
         FROM (SELECT x.id FROM ${job} x WHERE x.state = 'running' AND x.lease_until < now() FOR UPDATE SKIP LOCKED) e
         WHERE j.id = e.id RETURNING j.id),
       cand AS (
         SELECT x.id FROM ${job} x WHERE x.state = 'queued' AND x.run_at <= now() AND x.name = ANY ($1::text[])
         ORDER BY x.run_at, x.created_at
         LIMIT ${limit}
         FOR UPDATE SKIP LOCKED)
       UPDATE ${job} j SET state = 'running', attempts = j.attempts + 1, lease_token = gen_random_uuid(),
         lease_until = now() + make_interval(secs => $4), updated_at = now()
       FROM cand WHERE j.id = cand.id AND NOT EXISTS (SELECT 1 FROM reaped WHERE reaped.id = j.id)
       RETURNING j.id, j.name, j.payload, j.attempts, j.max_attempts, j.lease_token, j.run_at, j.created_at`,
      [[...names], take, cap, leaseMs / 1000],
    );
    const jobs = rows.map((row) => toClaimed(tenant, row));
    if (jobs.length >= take) return { jobs, next: undefined };
    try {
      const { rows: due } = await db.query<{ due: Date | null }>(
        `SELECT least((SELECT run_at FROM ${job} WHERE state = 'queued' ORDER BY run_at LIMIT 1),
                      (SELECT min(lease_until) FROM ${job} WHERE state = 'running')) AS due`,
      );
      return { jobs, next: due[0]?.due ?? null };
    } catch (error) {
      // The claim is committed: its jobs must run (or be released), so they are answered anyway,
      // with the next due time unknown (the tenant's signal stays as it is).
      if (jobs.length === 0) throw error;
      this.#host.logger.warn({ err: error, tenant: tenant.name }, 'could not read the next due job');
      return { jobs, next: undefined };
    }
  }

  /**
   * Completes `job` inside the handler's transaction `tx` (deletes it, if this process still
   * holds its lease). Throws `TENANTRY_ERR_JOB_LEASE_LOST` otherwise, which rolls the handler's
   * work back: another worker took the job over, or it was cancelled.
   */
  async complete(tx: TenantDb, job: ClaimedJob): Promise<void> {
    const { job: table } = runtimeTables(job.tenant);
    const result = await tx.query(`DELETE FROM ${table} WHERE id = $1 AND lease_token = $2`, [
      job.id,
      job.lease,
    ]);
    if (result.rowCount !== 1)
      throw new TenantryError('JOB_LEASE_LOST', { job: job.id, tenant: job.tenant.name });
  }

  /**
   * Records a failed run: back to the queue after `retryInMs`, or `failed` when out of attempts.
   * Answers the new state, or `lost` when the lease had gone.
   */
  async fail(job: ClaimedJob, message: string, retryInMs: number): Promise<'queued' | 'failed' | 'lost'> {
    const { job: table } = runtimeTables(job.tenant);
    const { rows } = await this.#host
      .bookkeeping(job.tenant)
      .query<{ state: 'queued' | 'failed'; run_at: Date }>(
        `UPDATE ${table} SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
         run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE now() + make_interval(secs => $3) END,
         last_error = $4, lease_token = NULL, lease_until = NULL, updated_at = now()
       WHERE id = $1 AND lease_token = $2 RETURNING state, run_at`,
        [job.id, job.lease, retryInMs / 1000, message.slice(0, 2000)],
      );
    const row = rows[0];
    if (!row) return 'lost';
    if (row.state === 'queued') await this.#wake(job.tenant, row.run_at);
    return row.state;
  }

  /**
   * Gives a claimed job back to the queue without running it to the end (a graceful stop, a
   * paused tenant); with `refund` the run does not count as an attempt.
   */
  async release(job: ClaimedJob, refund: boolean): Promise<void> {
    const { job: table } = runtimeTables(job.tenant);
    const { rowCount } = await this.#host.bookkeeping(job.tenant).query(
      `UPDATE ${table} SET state = 'queued', attempts = greatest(attempts - $3::int, 0), lease_token = NULL,
           lease_until = NULL, updated_at = now() WHERE id = $1 AND lease_token = $2`,
      [job.id, job.lease, refund ? 1 : 0],
    );
    if (rowCount) await this.#wake(job.tenant, new Date());
  }

  /** Extends the leases of `jobs` (all of `tenant`) by `leaseMs` from now. */
  async extend(tenant: Tenant, jobs: readonly ClaimedJob[], leaseMs: number): Promise<void> {
    const { job: table } = runtimeTables(tenant);
    await this.#host.bookkeeping(tenant).query(
      `UPDATE ${table} SET lease_until = now() + make_interval(secs => $3)
       WHERE state = 'running' AND id = ANY ($1::uuid[]) AND lease_token = ANY ($2::uuid[])`,
      [jobs.map((j) => j.id), jobs.map((j) => j.lease), leaseMs / 1000],
    );
  }

  /** Tells workers `tenant` has work due at `due` (after a retry, release or `jobs retry`). */
  async #wake(tenant: Tenant, due: Date): Promise<void> {
    if (runtimeTables(tenant).placement === 'catalog')
      await this.#connections.notify(JOBS_CHANNEL, String(tenant.id));
    else await this.#signals.jobDue(tenant, due);
  }

  /** Wakes workers for `tenant` (exported for the admin operations). */
  wake(tenant: Tenant, due: Date): Promise<void> {
    return this.#wake(tenant, due);
  }
}
