import { Command } from 'commander';
import { audit, formatReport, hasHighFindings } from '../../audit/index.js';
import { TenantryError } from '../../errors.js';
import { findDatabaseUrl, type GlobalFlags } from '../connect.js';
import { out, printJson } from '../output.js';

/**
 * `tenantry audit [--database-url URL] [--json]`: inspects a live database for isolation
 * hazards and prints them with their severity and fix. Exits 1 when any is high-severity
 * (`TENANTRY_ERR_AUDIT_HAZARDS` on stderr); with `--json`, stdout carries only the JSON report.
 * It reads the catalog directly (no master key needed) and changes nothing.
 */
export function auditCommand(globals: () => GlobalFlags): Command {
  return new Command('audit')
    .description('report isolation hazards of a live tenantry database (exit 1 on any high-severity one)')
    .option(
      '--database-url <url>',
      'the database to audit (default: the global --database-url, env, or running serve)',
    )
    .option('--json', 'print the report as one JSON object and nothing else on stdout')
    .action(async (opts: { databaseUrl?: string; json?: boolean }) => {
      const flags = globals();
      const url = findDatabaseUrl(opts.databaseUrl ? { ...flags, databaseUrl: opts.databaseUrl } : flags);
      const report = await audit(url);
      if (opts.json) printJson(report);
      else for (const line of formatReport(report)) out(line);
      if (hasHighFindings(report)) {
        throw new TenantryError('AUDIT_HAZARDS', { count: report.summary.high, database: report.database });
      }
    });
}
