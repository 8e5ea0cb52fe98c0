import type { Command } from 'commander';
import type { RepairReport } from '../../tenants/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

/** The report as text: one row per object, then what was brought up to date. */
function printReport(report: RepairReport): void {
  if (report.orphans.length === 0) out('no orphaned tenant databases, roles or schemas');
  else {
    printTable(
      report.orphans.map((o) => ({
        server: o.server,
        kind: o.kind,
        name: o.name,
        evidence: o.evidence,
        outcome: o.outcome,
        error: o.error ?? '',
      })),
    );
  }
  if (report.staleDatabases.length > 0) {
    out(
      `${report.dryRun ? 'would bring' : 'brought'} up to the table registry: ${report.staleDatabases.join(', ')}`,
    );
  }
  if (report.clearedRecords > 0) out(`${report.clearedRecords} finished records cleared`);
}

/** Adds `tenant repair [--dry-run] [--json]` to the `tenant` command. */
export function addRepairCommand(tenant: Command, globals: () => GlobalFlags): void {
  tenant
    .command('repair')
    .description(
      'remove what a process killed during a tenant creation or drop left behind (databases, roles, ' +
        'schemas of no tenant, on every registered server) and bring database tenants that missed a ' +
        'declared table up to the registry; tenants being moved are left alone',
    )
    .option('--dry-run', 'only report what would be done')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const report = await t.tenants.repair({ dryRun: opts.dryRun === true });
        if (opts.json) printJson(report);
        else printReport(report);
        if (report.failed) process.exitCode = 1;
      });
    });
}
