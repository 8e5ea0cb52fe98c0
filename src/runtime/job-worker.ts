import { isTenantryError, TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RuntimeConnections } from './connections.js';
import type { RuntimeHost } from './host.js';
import type { JobClaimer } from './job-claimer.js';
import { NO_CAP, type JobStore } from './job-store.js';
import type { ClaimedJob, DefineOptions, JobHandler, StopOptions, WorkerOptions } from './job-types.js';
import { JOBS_CHANNEL, type Signals } from './signals.js';
import { Waker } from './waker.js';

/** A defined job: its handler and options. */
export interface JobDefinition {
  readonly handler: JobHandler;
  readonly options: DefineOptions;
}

/** What a worker needs. */
export interface WorkerDeps {
  readonly host: RuntimeHost;
  readonly store: JobStore;
  readonly claimer: JobClaimer;
  readonly signals: Signals;
  readonly connections: RuntimeConnections;
  readonly definitions: ReadonlyMap<string, JobDefinition>;
}

/** Counters of a worker since it started. */
export interface WorkerStats {
  readonly running: number;
  readonly buffered: number;
  readonly completed: number;
  readonly failed: number;
}

interface Running {
  readonly job: ClaimedJob;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

/** Upper bounds: timer delays beyond 2^31 − 1 ms fire after 1 ms; slots beyond these overflow claims. */
const MAX_MS = 2_147_483_647;
const MAX_SLOTS = 100_000;

function defaultBackoff(attempt: number): number {
  return Math.min(3_600_000, 1000 * 2 ** Math.min(attempt - 1, 22)) * (0.8 + Math.random() * 0.4);
}

/**
 * The delay before a failed job's next attempt: the definition's backoff when it answers a
 * finite number of milliseconds (clamped to 0 … 2^31 − 1), else — it threw, or answered NaN or
 * Infinity — the default backoff, so the failure itself is still recorded.
 */
function backoffDelay(options: DefineOptions, attempt: number): number {
  let delay = Number.NaN;
  try {
    delay = options.backoff ? Number(options.backoff(attempt)) : defaultBackoff(attempt);
  } catch {
    // the default below
  }
  if (!Number.isFinite(delay)) delay = defaultBackoff(attempt);
  return Math.min(MAX_MS, Math.max(0, Math.round(delay)));
}

function positive(value: number | undefined, fallback: number, what: string, max: number): number {
  const n = value ?? fallback;
  const min = what === 'prefetch' ? 0 : 1;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: `worker ${what}`,
      problem: `expected a whole number from ${min} to ${max}`,
    });
  }
  return n;
}

/**
 * A job worker of this process: claims jobs (see {@link JobClaimer}), runs each handler as its
 * tenant — inside a transaction that also deletes the job when the definition is transactional —
 * renews the leases of claimed jobs while they run, retries failures with back-off, pauses the
 * jobs of tenants that are no longer active, and stops gracefully.
 */
export class JobWorker {
  readonly #deps: WorkerDeps;
  readonly #log: Logger;
  readonly #concurrency: number;
  readonly #prefetch: number;
  readonly #tenantCap: number;
  readonly #leaseMs: number;
  readonly #pollMs: number;
  readonly #sweepMs: number;
  readonly #running = new Map<string, Running>();
  #buffer: ClaimedJob[] = [];
  readonly #work = new Waker();
  readonly #slot = new Waker();
  #stopping = false;
  #loop: Promise<void> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #unlisten: (() => void) | undefined;
  #completed = 0;
  #failed = 0;

  constructor(deps: WorkerDeps, options: WorkerOptions = {}) {
    this.#deps = deps;
    this.#log = deps.host.logger;
    this.#concurrency = positive(options.concurrency, 4, 'concurrency', MAX_SLOTS);
    this.#prefetch = positive(options.prefetch, this.#concurrency, 'prefetch', MAX_SLOTS);
    this.#tenantCap = positive(options.tenantConcurrency, NO_CAP, 'tenantConcurrency', NO_CAP);
    this.#leaseMs = positive(options.leaseMs, 30_000, 'leaseMs', MAX_MS);
    this.#pollMs = positive(options.pollMs, 1000, 'pollMs', MAX_MS);
    this.#sweepMs = positive(options.sweepMs, 60_000, 'sweepMs', MAX_MS);
  }

  /** Starts listening for enqueues, the claim loop, lease renewal and the database-tenant sweep. */
  async start(): Promise<void> {
    const unlisten = await this.#deps.connections.listen(JOBS_CHANNEL, (payload) => {
      if (/^-?\d+$/.test(payload)) this.#deps.claimer.notice(Number(payload));
      this.#work.wake();
    });
    // stop() ran while listen() was pending: it found nothing to stop, so start nothing.
    if (this.#stopping) {
      unlisten();
      return;
    }
    this.#unlisten = unlisten;
    const sweep = () =>
      void this.#deps.signals
        .sweepDatabaseTenants({ jobs: true, events: false })
        .then(() => this.#work.wake())
        .catch((error: unknown) => this.#log.warn({ err: error }, 'job sweep failed'));
    sweep();
    this.#timers = [
      setInterval(sweep, this.#sweepMs),
      setInterval(() => void this.#renew(), this.#leaseMs / 3),
    ];
    for (const timer of this.#timers) timer.unref();
    this.#loop = this.#run();
  }

  /** Jobs running and claimed-but-waiting now, and completed and failed runs so far. */
  stats(): WorkerStats {
    return {
      running: this.#running.size,
      buffered: this.#buffer.length,
      completed: this.#completed,
      failed: this.#failed,
    };
  }

  async #run(): Promise<void> {
    const total = this.#concurrency + this.#prefetch;
    while (!this.#stopping) {
      const room = total - this.#running.size - this.#buffer.length;
      if (room < 1 || (this.#buffer.length > 0 && room < Math.ceil(total / 2))) {
        await this.#slot.wait(this.#pollMs);
        continue;
      }
      let jobs: ClaimedJob[] = [];
      try {
        jobs = await this.#deps.claimer.claim({
          names: [...this.#deps.definitions.keys()],
          capacity: room,
          tenantCap: this.#tenantCap,
          leaseMs: this.#leaseMs,
          pollMs: this.#pollMs,
        });
      } catch (error) {
        this.#log.warn({ err: error }, 'claiming jobs failed; retrying');
      }
      if (this.#stopping) {
        await Promise.all(jobs.map((job) => this.#release(job)));
        break;
      }
      this.#buffer.push(...jobs);
      this.#dispatch();
      if (jobs.length === 0) await this.#work.wait(this.#pollMs);
    }
  }

  #dispatch(): void {
    while (!this.#stopping && this.#running.size < this.#concurrency) {
      const job = this.#buffer.shift();
      if (!job) return;
      const abort = new AbortController();
      const done = this.#execute(job, abort.signal).finally(() => {
        this.#running.delete(job.lease);
        this.#slot.wake();
        this.#dispatch();
      });
      this.#running.set(job.lease, { job, abort, done });
    }
  }

  async #execute(job: ClaimedJob, signal: AbortSignal): Promise<void> {
    const definition = this.#deps.definitions.get(job.name);
    if (!definition) return this.#release(job);
    const { handler, options } = definition;
    const context = {
      id: job.id,
      name: job.name,
      tenant: job.tenant,
      attempt: job.attempt,
      maxAttempts: job.maxAttempts,
      signal,
    };
    try {
      await this.#deps.host.withTenant(job.tenant, async (db) => {
        if (options.transactional === false) {
          await handler(job.payload, { ...context, db });
          await this.#deps.store.complete(db, job);
          return;
        }
        await db.transaction(async (tx) => {
          await handler(job.payload, { ...context, db: tx });
          await this.#deps.store.complete(tx, job);
        });
      });
      this.#completed++;
    } catch (error) {
      await this.#onFailure(job, error, options);
    }
  }

  async #onFailure(job: ClaimedJob, error: unknown, options: DefineOptions): Promise<void> {
    if (isTenantryError(error, 'JOB_LEASE_LOST')) {
      this.#log.info({ job: job.id, tenant: job.tenant.name }, 'job lease lost: its work was rolled back');
      return;
    }
    const current = this.#deps.host.catalog.get(job.tenant.id);
    try {
      if (current?.state !== 'active') {
        // A disabled or locked tenant's jobs wait, without losing an attempt; a dropped one's are gone.
        if (current) await this.#deps.store.release(job, true);
        return;
      }
      this.#failed++;
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const delay = backoffDelay(options, job.attempt);
      const state = await this.#deps.store.fail(job, message, delay);
      this.#log.warn(
        { err: error, job: job.id, name: job.name, tenant: job.tenant.name, state },
        'job failed',
      );
    } catch (bookkeeping) {
      this.#log.error(
        { err: bookkeeping, job: job.id },
        'could not record a failed job (its lease will expire)',
      );
    }
  }

  async #release(job: ClaimedJob): Promise<void> {
    await this.#deps.store
      .release(job, true)
      .catch((error: unknown) =>
        this.#log.warn({ err: error, job: job.id }, 'could not release a job (its lease will expire)'),
      );
  }

  /** Renews the leases of every job this worker holds (running or waiting), per tenant. */
  async #renew(): Promise<void> {
    const held = [...[...this.#running.values()].map((r) => r.job), ...this.#buffer];
    const byTenant = new Map<number, ClaimedJob[]>();
    for (const job of held) byTenant.set(job.tenant.id, [...(byTenant.get(job.tenant.id) ?? []), job]);
    await Promise.all(
      [...byTenant.values()].map((jobs) =>
        this.#deps.store
          .extend(jobs[0]!.tenant, jobs, this.#leaseMs)
          .catch((error: unknown) => this.#log.warn({ err: error }, 'could not renew job leases')),
      ),
    );
  }

  /**
   * Stops claiming, gives waiting jobs back, lets running jobs finish for up to `timeoutMs`
   * (default 10 s), then aborts the rest (their `signal`) and releases their leases: their
   * transactions can no longer complete them, and the jobs run again elsewhere.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#unlisten?.();
    this.#work.wake();
    this.#slot.wake();
    await this.#loop;
    await Promise.all(this.#buffer.splice(0).map((job) => this.#release(job)));
    const all = Promise.all([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>(
      (resolve) => (timer = setTimeout(resolve, options.timeoutMs ?? 10_000)),
    );
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    const left = [...this.#running.values()];
    for (const r of left) r.abort.abort(new TenantryError('CLOSED'));
    await Promise.all(left.map((r) => this.#release(r.job)));
    for (const t of this.#timers) clearInterval(t);
  }
}
