import { Command } from 'commander';
import type { ScanFailure, ScanRow } from '../../cross-tenant/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, printJson, printTable } from '../output.js';

interface ScanFlags {
  tenantWhere?: string;
  orderBy?: string;
  skipGroupDuplicates?: boolean;
  partial?: boolean;
  json?: boolean;
}

/** `tenantry scan [--tenant-where EXPR] [--order-by EXPR] [--skip-group-duplicates] [--json] SQL`, as the operator. */
export function scanCommand(globals: () => GlobalFlags): Command {
  return new Command('scan')
    .description(
      'run SQL in every selected tenant (TENANT-WHERE) and print the rows tagged _tenant_id, _tenant_name',
    )
    .argument('<sql>', 'the query, in tenant-facing names')
    .option(
      '--tenant-where <expr>',
      'which tenants: a condition on id, name, kind, state, e.g. "id > 0 and name < \'M\'"',
    )
    .option('--order-by <expr>', 'merge the tenants’ rows in this order (default: by tenant)')
    .option('--skip-group-duplicates', "return a tenant group's rows once")
    .option('--partial', 'skip failing tenants (listed on stderr) instead of failing')
    .option('--json', 'print one JSON array')
    .action(async (sql: string, opts: ScanFlags) => {
      await withTenantry(globals(), async (t) => {
        const failures: ScanFailure[] = [];
        const rows: ScanRow[] = [];
        const scan = t.crossTenant(
          {
            sql,
            asOperator: true,
            ...(opts.tenantWhere === undefined ? {} : { where: opts.tenantWhere }),
            ...(opts.orderBy === undefined ? {} : { orderBy: opts.orderBy }),
            skipGroupDuplicates: opts.skipGroupDuplicates === true,
            onError: opts.partial ? 'partial' : 'fail',
          },
          failures,
        );
        for await (const row of scan) rows.push(row);
        if (opts.json) printJson(rows);
        else printTable(rows);
        for (const f of failures) err(`skipped ${f.tenant}: ${f.error.message}`);
      });
    });
}
