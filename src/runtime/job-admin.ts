import type { Tenant, TenantRef } from '../catalog/index.js';
import { tryGetTenant } from '../context/index.js';
import { TenantryError } from '../errors.js';
import type { RuntimeConnections } from './connections.js';
import { hasOwnStorage, runtimeTables, type RuntimeHost } from './host.js';
import type { JobStore } from './job-store.js';
import type { JobInfo, JobState } from './job-types.js';
import type { RuntimeProvisioner } from './provision.js';

/** Which jobs `jobs.list`, `jobs.retry` and `jobs.cancel` act on. */
export interface JobSelection {
  /**
   * One tenant's jobs. Without it: the current tenant's inside a tenant context, every tenant's
   * outside (the operator's view).
   */
  readonly tenant?: TenantRef;
  /** One job (its uuid). */
  readonly id?: string;
}

/** Options of `jobs.list`. */
export interface ListJobsOptions extends JobSelection {
  /** States to list (default all). */
  readonly states?: readonly JobState[];
  /** Most jobs per tenant (default 100, at most 10,000). */
  readonly limit?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATES: readonly JobState[] = ['queued', 'running', 'failed', 'cancelled'];
const COLUMNS =
  'id, name, state, attempts, max_attempts, run_at, lease_until, last_error, created_at, payload';

interface JobRow {
  tenant_id?: number;
  id: string;
  name: string;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  lease_until: Date | null;
  last_error: string | null;
  created_at: Date;
  payload: unknown;
}

function isStates(value: unknown): value is readonly JobState[] {
  return Array.isArray(value) && value.every((s: unknown) => STATES.some((state) => state === s));
}

function toInfo(tenant: string, r: JobRow): JobInfo {
  return {
    id: r.id,
    tenant,
    name: r.name,
    state: r.state,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    runAt: r.run_at,
    leaseUntil: r.lease_until,
    lastError: r.last_error,
    createdAt: r.created_at,
    payload: r.payload,
  };
}

/** The statements of retry and cancel on one tenant's jobs (`$1`: a job id or null). */
const CHANGE = {
  retry: `SET state = 'queued', attempts = 0, run_at = now(), last_error = NULL, lease_token = NULL,
          lease_until = NULL, updated_at = now() WHERE state IN ('failed', 'cancelled')`,
  cancel: `SET state = 'cancelled', lease_token = NULL, lease_until = NULL, updated_at = now()
           WHERE (state IN ('queued', 'running', 'failed') AND id = $1) OR ($1 IS NULL AND state = 'queued')`,
} as const;

/**
 * Listing, retrying and cancelling jobs, for applications (their own tenant's jobs) and the
 * operator (`tenantry jobs …`, every tenant). Each tenant's jobs are read under row-level
 * security for that tenant; shared tenants' jobs, outside a tenant, in one query.
 */
export class JobAdmin {
  readonly #host: RuntimeHost;
  readonly #store: JobStore;
  readonly #provisioner: RuntimeProvisioner;
  readonly #connections: RuntimeConnections;

  constructor(
    host: RuntimeHost,
    store: JobStore,
    provisioner: RuntimeProvisioner,
    connections: RuntimeConnections,
  ) {
    this.#host = host;
    this.#store = store;
    this.#provisioner = provisioner;
    this.#connections = connections;
  }

  /** The tenants a selection covers, or `all` for every tenant. */
  async #scope(selection: JobSelection): Promise<Tenant[] | 'all'> {
    if (selection.id !== undefined && (typeof selection.id !== 'string' || !UUID.test(selection.id))) {
      throw new TenantryError('INVALID_ARGUMENT', { what: 'job id', problem: 'expected a uuid' });
    }
    const current = tryGetTenant();
    if (selection.tenant !== undefined) {
      const named = await this.#host.resolveTenant(selection.tenant);
      // Inside a tenant context only that tenant's jobs are reachable, whatever the caller names.
      if (current && named.id !== current.id) {
        throw new TenantryError('FORBIDDEN', {
          problem: `Code running as tenant ${current.name} cannot reach the jobs of tenant ${named.name}.`,
        });
      }
      return [named];
    }
    return current ? [current] : 'all';
  }

  /** Tenants with their own job tables (schema and database tenants). */
  #ownStorage(): Tenant[] {
    return this.#host.catalog.tenants().filter((t) => t.kind !== 'group' && hasOwnStorage(t));
  }

  /** Lists jobs, oldest first. Throws `TENANTRY_ERR_INVALID_ARGUMENT`, `TENANTRY_ERR_TENANT_NOT_FOUND`. */
  async list(options: ListJobsOptions = {}): Promise<JobInfo[]> {
    const states: unknown = options.states ?? STATES;
    if (!isStates(states)) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'job states',
        problem: `expected some of ${STATES.join(', ')}`,
      });
    }
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
      throw new TenantryError('INVALID_ARGUMENT', {
        what: 'limit',
        problem: 'expected an integer from 1 to 10,000',
      });
    }
    const scope = await this.#scope(options);
    const filter = `state = ANY ($1::text[]) AND ($2::uuid IS NULL OR id = $2)`;
    const values = [[...states], options.id ?? null, limit];
    const found: JobInfo[] = [];
    const tenants = scope === 'all' ? this.#ownStorage() : scope;
    if (scope === 'all') {
      const { rows } = await this.#connections.query<JobRow>(
        `SELECT tenant_id, ${COLUMNS} FROM tenantry.job WHERE ${filter} ORDER BY created_at LIMIT $3`,
        values,
      );
      for (const r of rows)
        found.push(toInfo(this.#host.catalog.get(r.tenant_id ?? 0)?.name ?? String(r.tenant_id), r));
    }
    for (const tenant of tenants) {
      await this.#provisioner.ensure(tenant);
      const { rows } = await this.#host
        .bookkeeping(tenant)
        .query<JobRow>(
          `SELECT ${COLUMNS} FROM ${runtimeTables(tenant).job} WHERE ${filter} ORDER BY created_at LIMIT $3`,
          values,
        );
      found.push(...rows.map((r) => toInfo(tenant.name, r)));
    }
    return found;
  }

  /**
   * Puts failed and cancelled jobs back in the queue with fresh attempts (one job with `id`).
   * Answers how many. Throws `TENANTRY_ERR_JOB_NOT_FOUND` for an `id` that matches no such job.
   */
  retry(selection: JobSelection = {}): Promise<number> {
    return this.#change('retry', selection);
  }

  /**
   * Cancels the job `id` (queued, running — its run's transaction can then not complete — or
   * failed), or without `id` every queued job of the selection. Answers how many. Throws
   * `TENANTRY_ERR_JOB_NOT_FOUND` for an `id` that matches no such job.
   */
  cancel(selection: JobSelection = {}): Promise<number> {
    return this.#change('cancel', selection);
  }

  async #change(action: keyof typeof CHANGE, selection: JobSelection): Promise<number> {
    const scope = await this.#scope(selection);
    const id = selection.id ?? null;
    const idFilter = action === 'retry' ? ' AND ($1::uuid IS NULL OR id = $1)' : '';
    let count = 0;
    if (scope === 'all') {
      const { rows } = await this.#connections.query<{ tenant_id: number }>(
        `UPDATE tenantry.job ${CHANGE[action]}${idFilter} RETURNING tenant_id`,
        [id],
      );
      count += rows.length;
      for (const tenantId of new Set(rows.map((r) => r.tenant_id))) {
        const tenant = this.#host.catalog.get(tenantId);
        if (tenant && action === 'retry') await this.#store.wake(tenant, new Date());
      }
    }
    for (const tenant of scope === 'all' ? this.#ownStorage() : scope) {
      if (id !== null && count > 0) break;
      await this.#provisioner.ensure(tenant);
      const { rowCount } = await this.#host
        .bookkeeping(tenant)
        .query(`UPDATE ${runtimeTables(tenant).job} ${CHANGE[action]}${idFilter}`, [id]);
      count += rowCount ?? 0;
      if (rowCount && action === 'retry') await this.#store.wake(tenant, new Date());
    }
    if (id !== null && count === 0) throw new TenantryError('JOB_NOT_FOUND', { job: id, action });
    return count;
  }
}
