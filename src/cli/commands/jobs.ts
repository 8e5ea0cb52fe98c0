import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, Option } from 'commander';
import type { JobInfo, JobState } from '../../runtime/index.js';
import { TenantryError } from '../../errors.js';
import type { Tenantry } from '../../tenantry.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

const STATES = ['queued', 'running', 'failed', 'cancelled'] as const;

function row(job: JobInfo): Record<string, unknown> {
  return {
    tenant: job.tenant,
    id: job.id,
    name: job.name,
    state: job.state,
    attempts: `${job.attempts}/${job.maxAttempts}`,
    run_at: job.runAt,
    last_error: job.lastError ?? '',
  };
}

function plural(n: number): string {
  return `${n} job${n === 1 ? '' : 's'}`;
}

/** `tenantry jobs list|retry|cancel [--tenant T]`: the jobs of one tenant or of all. */
export function jobsCommand(globals: () => GlobalFlags): Command {
  const jobs = new Command('jobs').description(
    "per-tenant jobs (tenantry.jobs): list them, re-queue failed ones, cancel queued ones; without --tenant, every tenant's",
  );

  jobs
    .command('list')
    .description('list jobs, oldest first')
    .option('--tenant <tenant>', "only this tenant's jobs (id, uuid or name)")
    .addOption(new Option('--state <state...>', 'only jobs in these states').choices(STATES))
    .option('--limit <n>', 'most jobs per tenant', '100')
    .option('--json', 'print JSON (with payloads)')
    .action(async (opts: { tenant?: string; state?: JobState[]; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      await withTenantry(globals(), async (t) => {
        const list = await t.jobs.list({
          ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
          ...(opts.state === undefined ? {} : { states: opts.state }),
          limit,
        });
        if (opts.json) printJson(list);
        else printTable(list.map(row));
      });
    });

  jobs
    .command('retry [id]')
    .description('re-queue failed and cancelled jobs with fresh attempts (one job with its id)')
    .option('--tenant <tenant>', "only this tenant's jobs")
    .action(async (id: string | undefined, opts: { tenant?: string }) => {
      await withTenantry(globals(), async (t) => {
        const n = await t.jobs.retry({
          ...(id === undefined ? {} : { id }),
          ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
        });
        out(`${plural(n)} re-queued`);
      });
    });

  jobs
    .command('cancel [id]')
    .description('cancel a job (queued, running or failed), or with --all-queued every queued job')
    .option('--tenant <tenant>', "only this tenant's jobs")
    .option('--all-queued', 'cancel every queued job (of --tenant, or of every tenant)')
    .action(async (id: string | undefined, opts: { tenant?: string; allQueued?: boolean }) => {
      if ((id === undefined) === (opts.allQueued !== true)) {
        throw new TenantryError('INVALID_ARGUMENT', {
          what: 'arguments',
          problem: 'give a job id or --all-queued (not both)',
        });
      }
      await withTenantry(globals(), async (t) => {
        const n = await t.jobs.cancel({
          ...(id === undefined ? {} : { id }),
          ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
        });
        out(`${plural(n)} cancelled`);
      });
    });

  return jobs;
}

/**
 * `tenantry serve --workers N [--jobs-module FILE]`: loads the module (its default export is
 * called with the instance and defines handlers with `tenantry.jobs.define`) and starts a worker
 * running N jobs at a time; `tenantry.close()` stops it gracefully. Answers a line for the log.
 * Throws `TENANTRY_ERR_CONFIG` for a bad count or module.
 */
export async function startServeWorkers(
  tenantry: Tenantry,
  workers: string,
  module: string | undefined,
): Promise<string> {
  const concurrency = Number(workers);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    throw new TenantryError('CONFIG', {
      problem: `--workers must be an integer from 1 to 1000, not ${workers}`,
    });
  }
  if (module !== undefined) {
    const loaded = (await import(pathToFileURL(resolve(module)).href)) as { default?: unknown };
    if (typeof loaded.default !== 'function') {
      throw new TenantryError('CONFIG', {
        problem: `--jobs-module ${module} must export a default function (tenantry) => … that defines job handlers`,
      });
    }
    await (loaded.default as (t: Tenantry) => unknown)(tenantry);
  }
  await tenantry.jobs.start({ concurrency });
  return `job workers: ${concurrency} at a time${module === undefined ? ' (no --jobs-module: no handlers defined here)' : ` (handlers from ${module})`}`;
}
