export { Runtime } from './runtime.js';
export { runtimeTables, hasOwnStorage } from './host.js';
export type { RuntimeHost, RuntimeTables } from './host.js';
export { TenantCache } from './tenant-cache.js';
export type { CacheOptions } from './tenant-cache.js';
export { IdGenerators } from './ids.js';
export type { IdOptions } from './ids.js';
export { EventLog } from './events.js';
export type { EventRef } from './events.js';
export { EventSubscription } from './event-subscription.js';
export type { EventHandler, SubscribeOptions, TenantEvent } from './event-subscription.js';
export { JobQueue } from './jobs.js';
export { JobWorker } from './job-worker.js';
export type { WorkerStats } from './job-worker.js';
export type { JobSelection, ListJobsOptions } from './job-admin.js';
export type {
  ClaimedJob,
  DefineOptions,
  EnqueueOptions,
  JobContext,
  JobHandler,
  JobInfo,
  JobRef,
  JobState,
  StopOptions,
  WorkerOptions,
} from './job-types.js';
