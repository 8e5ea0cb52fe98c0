import type { Tenant } from '../catalog/index.js';
import type { TenantDb } from '../session/index.js';

/** A job's state: waiting (possibly until `runAt`), running under a lease, out of attempts, or cancelled. */
export type JobState = 'queued' | 'running' | 'failed' | 'cancelled';

/** What a handler learns about the job it runs. */
export interface JobContext {
  /** The job's id (a uuid). */
  readonly id: string;
  readonly name: string;
  /** The tenant the job belongs to (also `getTenant()` inside the handler). */
  readonly tenant: Tenant;
  /** This run's number, from 1; a run cut off by a crash counts. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /**
   * The tenant handle of this run: inside the run's transaction when the job is transactional
   * (the default), so the handler's writes and the job's completion commit together.
   */
  readonly db: TenantDb;
  /** Aborted when the worker stops and the run outlives the stop timeout. */
  readonly signal: AbortSignal;
}

/** A job handler: `payload` is the JSON value given to `enqueue`. */
export type JobHandler<P = unknown> = (payload: P, context: JobContext) => Promise<void>;

/** Options of `jobs.define`. */
export interface DefineOptions {
  /**
   * Run the handler inside a transaction that also completes the job (default true): the
   * handler's database work is then committed exactly once, however often the job is retried
   * or a worker dies. With false, the handler runs outside a transaction (long calls to other
   * systems) and must itself tolerate running more than once.
   */
  readonly transactional?: boolean;
  /** Attempts of jobs that do not say (default 5, at most 1,000). */
  readonly maxAttempts?: number;
  /** Delay before retry number `attempt` (1, 2, …) in ms; default 1 s × 2^(attempt−1), at most 1 h, ±20 %. */
  readonly backoff?: (attempt: number) => number;
}

/** Options of `jobs.enqueue`. */
export interface EnqueueOptions {
  /** Run no earlier than this (default now). */
  readonly runAt?: Date;
  /** Run no earlier than this many ms from now (instead of `runAt`). */
  readonly delayMs?: number;
  /** Attempts before the job is left `failed` (default the definition's, else 5; 1 … 1,000). */
  readonly maxAttempts?: number;
}

/** An enqueued job. */
export interface JobRef {
  readonly id: string;
  readonly tenant: Tenant;
  readonly name: string;
  readonly runAt: Date;
}

/** A job as listed by `jobs.list`. */
export interface JobInfo {
  readonly id: string;
  /** The tenant's name. */
  readonly tenant: string;
  readonly name: string;
  readonly state: JobState;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly runAt: Date;
  readonly leaseUntil: Date | null;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly payload: unknown;
}

/** A job this process claimed (leased) and will run. */
export interface ClaimedJob {
  readonly tenant: Tenant;
  readonly id: string;
  readonly name: string;
  readonly payload: unknown;
  /** This run's number (attempts including this one). */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** The lease token: completing, failing or releasing the job needs it. */
  readonly lease: string;
  readonly runAt: Date;
  readonly createdAt: Date;
}

/** Options of `jobs.start` (a worker). */
export interface WorkerOptions {
  /** Jobs run at once by this worker (default 4). `tenantry serve --workers N` sets it. */
  readonly concurrency?: number;
  /** Most jobs of one tenant running at once across all workers (default: no cap). */
  readonly tenantConcurrency?: number;
  /** Lease of a claimed job in ms (default 30 s), renewed every third of it while it runs. */
  readonly leaseMs?: number;
  /** Poll interval when idle, in ms (default 1,000; notifications wake the worker sooner). */
  readonly pollMs?: number;
  /** Jobs claimed ahead of free slots (default: as many as `concurrency`). */
  readonly prefetch?: number;
  /** How often database tenants are re-read for work whose signal was lost, in ms (default 60 s). */
  readonly sweepMs?: number;
}

/** Options of `worker.stop`. */
export interface StopOptions {
  /** How long running jobs may finish before their leases are released (default 10 s). */
  readonly timeoutMs?: number;
}
