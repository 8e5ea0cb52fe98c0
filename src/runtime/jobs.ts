import { TenantryError } from '../errors.js';
import type { JobAdmin, JobSelection, ListJobsOptions } from './job-admin.js';
import { JobWorker, type JobDefinition, type WorkerDeps } from './job-worker.js';
import type {
  DefineOptions,
  EnqueueOptions,
  JobHandler,
  JobInfo,
  JobRef,
  StopOptions,
  WorkerOptions,
} from './job-types.js';

const NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,127}$/;
/** Largest payload accepted (its JSON text), so one job cannot bloat a claim. */
const MAX_PAYLOAD = 1_000_000;

function invalid(what: string, problem: string): TenantryError {
  return new TenantryError('INVALID_ARGUMENT', { what, problem });
}

function checkName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalid(
      'job name',
      `${JSON.stringify(name)} must start with a letter (letters, digits, _ . : -, at most 128)`,
    );
  }
}

function checkAttempts(value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 1 || value > 1000)) {
    throw invalid('maxAttempts', 'expected an integer from 1 to 1,000');
  }
}

function payloadText(payload: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload ?? null);
  } catch (error) {
    throw invalid(
      'job payload',
      `not JSON-serialisable (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  if (text === undefined) throw invalid('job payload', 'not JSON-serialisable');
  if (text.length > MAX_PAYLOAD) throw invalid('job payload', 'larger than 1,000,000 characters of JSON');
  return text;
}

function runAtOf(options: EnqueueOptions): Date | null {
  if (options.runAt !== undefined && options.delayMs !== undefined)
    throw invalid('enqueue options', 'give runAt or delayMs, not both');
  if (options.delayMs !== undefined) {
    if (!Number.isFinite(options.delayMs) || options.delayMs < 0)
      throw invalid('delayMs', 'expected a number ≥ 0');
    return new Date(Date.now() + options.delayMs);
  }
  if (
    options.runAt !== undefined &&
    !(options.runAt instanceof Date && Number.isFinite(options.runAt.getTime()))
  ) {
    throw invalid('runAt', 'expected a valid Date');
  }
  return options.runAt ?? null;
}

/**
 * Jobs and timers per tenant (`tenantry.jobs`): define handlers, enqueue jobs inside a tenant
 * context (stored with the tenant's data: shared tenants in a multi-tenant table under RLS,
 * schema tenants in their schema, database tenants in their database), and run workers that
 * claim them fairly across tenants and run each handler as its tenant. See docs/runtime.md.
 */
export class JobQueue {
  readonly #definitions = new Map<string, JobDefinition>();
  readonly #deps: Omit<WorkerDeps, 'definitions'>;
  readonly #admin: JobAdmin;
  readonly #workers = new Set<JobWorker>();

  constructor(deps: Omit<WorkerDeps, 'definitions'>, admin: JobAdmin) {
    this.#deps = deps;
    this.#admin = admin;
  }

  /**
   * Defines the handler of jobs named `name` in this process (workers claim only jobs they can
   * run). Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name or options, or a name defined twice.
   */
  define<P = unknown>(name: string, handler: JobHandler<P>, options: DefineOptions = {}): void {
    checkName(name);
    if (typeof handler !== 'function') throw invalid('job handler', 'expected a function');
    checkAttempts(options.maxAttempts);
    if (options.backoff !== undefined && typeof options.backoff !== 'function') {
      throw invalid('job backoff', 'expected a function (attempt) => milliseconds');
    }
    if (this.#definitions.has(name)) throw invalid('job name', `${name} is already defined`);
    this.#definitions.set(name, { handler: handler as JobHandler, options });
  }

  /**
   * Enqueues a job for the tenant in context; inside `db.transaction()` it exists only if that
   * transaction commits. Throws `TENANTRY_ERR_NO_TENANT` outside a tenant context and
   * `TENANTRY_ERR_INVALID_ARGUMENT` for a bad name, payload or option.
   */
  async enqueue(name: string, payload?: unknown, options: EnqueueOptions = {}): Promise<JobRef> {
    const [job] = await this.enqueueMany(name, [payload], options);
    if (!job) throw new TenantryError('INTERNAL');
    return job;
  }

  /** Enqueues one job per payload in one statement (same rules as {@link enqueue}). */
  async enqueueMany(
    name: string,
    payloads: readonly unknown[],
    options: EnqueueOptions = {},
  ): Promise<JobRef[]> {
    checkName(name);
    checkAttempts(options.maxAttempts);
    if (!Array.isArray(payloads) || payloads.length === 0 || payloads.length > 100_000) {
      throw invalid('payloads', 'expected an array of 1 to 100,000 payloads');
    }
    const runAt = runAtOf(options);
    const texts = payloads.map(payloadText);
    const db = this.#deps.host.currentDb();
    const attempts = options.maxAttempts ?? this.#definitions.get(name)?.options.maxAttempts ?? 5;
    const rows = await this.#deps.store.enqueue(db, name, texts, runAt, attempts);
    return rows.map((r) => ({ id: r.id, tenant: db.tenant, name, runAt: r.runAt }));
  }

  /**
   * Starts a worker in this process that runs the jobs defined here (`concurrency` at a time).
   * Resolves once it listens for enqueues. Stop it with `worker.stop()` or `tenantry.close()`.
   */
  async start(options: WorkerOptions = {}): Promise<JobWorker> {
    const worker = new JobWorker({ ...this.#deps, definitions: this.#definitions }, options);
    this.#workers.add(worker);
    await worker.start();
    return worker;
  }

  /** Stops every worker started here (see {@link JobWorker.stop}). */
  async stop(options: StopOptions = {}): Promise<void> {
    const workers = [...this.#workers];
    this.#workers.clear();
    await Promise.all(workers.map((w) => w.stop(options)));
  }

  /** Lists jobs (see {@link JobAdmin.list}). */
  list(options?: ListJobsOptions): Promise<JobInfo[]> {
    return this.#admin.list(options);
  }

  /** Re-queues failed and cancelled jobs (see {@link JobAdmin.retry}). */
  retry(selection?: JobSelection): Promise<number> {
    return this.#admin.retry(selection);
  }

  /** Cancels a job or a selection's queued jobs (see {@link JobAdmin.cancel}). */
  cancel(selection?: JobSelection): Promise<number> {
    return this.#admin.cancel(selection);
  }
}
