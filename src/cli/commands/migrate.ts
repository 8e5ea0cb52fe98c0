import { Command } from 'commander';
import { TenantryError } from '../../errors.js';
import { ProgressView, type MigrationReport, type MigrationStatus } from '../../fleet/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, out, printJson, printTable } from '../output.js';

interface MigrateFlags {
  dir: string;
  dryRun?: boolean;
  concurrency: string;
  tenant?: string;
  json?: boolean;
  lockTimeout: string;
}

function positive(value: string, what: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what,
      problem: `${value} is not an integer from 1 to ${max}`,
    });
  }
  return n;
}

/** Ctrl-C once: no new tenant starts, those running finish. Twice: stop now (each tenant is atomic). */
function interruptible(): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) {
      err('stopped; tenants in progress were rolled back. Run `tenantry migrate` again to continue.');
      process.exit(130);
    }
    controller.abort();
    err(
      '\nstopping after the tenants in progress (Ctrl-C again to stop at once; nothing is lost either way)…',
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    done: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function printReport(report: MigrationReport): void {
  if (report.dryRun) {
    out(
      `dry run: nothing changed; the run would bring everyone to version ${Math.max(report.shared.from, report.latest)}`,
    );
    for (const p of report.plan) {
      out(`  ${p.target}: ${p.from} → ${p.versions.length ? p.versions.join(', ') : '(up to date)'}`);
    }
    out(`${report.tenants.total} tenant(s) behind`);
    return;
  }
  const { shared, tenants } = report;
  out(
    shared.applied.length > 0
      ? `shared: ${shared.from} → ${shared.to} (applied ${shared.applied.join(', ')})`
      : `shared: at ${shared.to}, nothing to apply`,
  );
  out(
    `tenants: ${tenants.total} behind, ${tenants.migrated} migrated, ${tenants.failed} failed` +
      `${tenants.pending ? `, ${tenants.pending} not started` : ''} (${(report.durationMs / 1000).toFixed(1)} s)`,
  );
  for (const f of report.failures) out(`  failed: ${f.target} at version ${f.version}: ${f.error}`);
}

function printStatus(status: MigrationStatus): void {
  out(
    `shared tables: version ${status.current} (${status.applied.length} applied` +
      `${status.pending.length ? `; pending ${status.pending.join(', ')}` : ''})`,
  );
  for (const t of status.templates) {
    out(
      `${t.name === 'schema' ? 'template schema' : `template database on ${t.server ?? 'main'}`}: version ${t.version}`,
    );
  }
  const behind = status.tenants.filter((t) => t.version < status.latest).length;
  const failed = status.tenants.filter((t) => t.failedVersion !== null).length;
  out(
    `tenants: ${status.sharedTenants} shared (on the shared tables), ${status.tenants.length} schema/database: ` +
      `${behind} behind, ${failed} failed`,
  );
  if (status.tenants.length === 0) return;
  printTable(
    status.tenants.map((t) => ({
      id: t.id,
      tenant: t.name,
      isolation: t.isolation,
      server: t.server,
      version: t.version,
      state:
        t.failedVersion !== null
          ? `failed at ${t.failedVersion}`
          : t.version < status.latest
            ? 'behind'
            : 'current',
      error: t.error ?? '',
    })),
  );
}

/**
 * `tenantry migrate [--dir D] [--dry-run] [--concurrency N] [--tenant NAME]` and
 * `tenantry migrate status`: the application's migrations across the fleet (docs/fleet.md).
 */
export function migrateCommand(globals: () => GlobalFlags): Command {
  const command = new Command('migrate')
    .description(
      'apply the application’s migrations to the shared tables and every schema and database tenant',
    )
    .option('--dir <dir>', 'directory of migration files (<version>_<name>.sql)', 'migrations')
    .option('--dry-run', 'list what would run; change nothing')
    .option('--concurrency <n>', 'tenants migrated at once (1–64)', '4')
    .option('--tenant <name>', 'migrate only this tenant (after the shared tables)')
    .option(
      '--lock-timeout <ms>',
      'lock_timeout of each step, so a busy tenant fails instead of stalling',
      '10000',
    )
    .option('--json', 'print the report as JSON')
    .action(async (opts: MigrateFlags) => {
      const concurrency = positive(opts.concurrency, 'concurrency', 64);
      const lockTimeoutMs = positive(opts.lockTimeout, 'lock timeout', 86_400_000);
      const view = new ProgressView(
        (text) => process.stderr.write(text),
        process.stderr.isTTY,
        process.stderr.columns,
      );
      const stop = interruptible();
      const report = await withTenantry(globals(), (t) =>
        t.migrations
          .run({
            dir: opts.dir,
            dryRun: opts.dryRun === true,
            concurrency,
            lockTimeoutMs,
            signal: stop.signal,
            onProgress: (event) => {
              if (!opts.json) view.update(event);
            },
            ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }),
          })
          .finally(() => {
            view.finish();
            stop.done();
          }),
      );
      if (opts.json) printJson(report);
      else printReport(report);
      if (report.failures.length > 0) {
        const first = report.failures[0]!;
        throw new TenantryError('MIGRATION_FAILED', {
          failed: report.failures.length,
          first: `${first.target} at version ${first.version}: ${first.error}`,
        });
      }
      if (report.interrupted)
        throw new TenantryError('MIGRATION_INTERRUPTED', { pending: report.tenants.pending });
    });
  command
    .command('status')
    .description('versions of the shared tables, the templates and every schema and database tenant')
    .option('--dir <dir>', 'directory of migration files, to list pending ones')
    .option('--tenant <name>', 'only this tenant')
    .option('--json', 'print JSON')
    .action(async (own: { dir?: string; tenant?: string; json?: boolean }, sub: Command) => {
      const parent = sub.parent?.opts<Partial<MigrateFlags>>() ?? {};
      const dir = own.dir ?? (parent.dir !== 'migrations' ? parent.dir : undefined);
      const tenant = own.tenant ?? parent.tenant;
      const status = await withTenantry(globals(), (t) =>
        t.migrations.status({
          ...(dir === undefined ? {} : { dir }),
          ...(tenant === undefined ? {} : { tenant }),
        }),
      );
      if (own.json === true || parent.json === true) printJson(status);
      else printStatus(status);
    });
  return command;
}
