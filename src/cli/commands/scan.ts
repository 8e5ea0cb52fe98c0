import { Command } from 'commander';
import { TenantryError } from '../../errors.js';
import type { CrossTenantOptions, ScanFailure, ScanRow } from '../../cross-tenant/index.js';
import type { Tenantry } from '../../tenantry.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, printJson, printTable } from '../output.js';
import { readPassword } from './user.js';

interface ScanFlags {
  tenantWhere?: string;
  orderBy?: string;
  skipGroupDuplicates?: boolean;
  partial?: boolean;
  json?: boolean;
  as?: string;
  passwordStdin?: boolean;
}

/** The password of `--as`: `--password-stdin`, else `TENANTRY_PASSWORD`. */
async function asPassword(flags: ScanFlags): Promise<string> {
  if (flags.passwordStdin === true) return readPassword({ passwordStdin: true });
  const env = process.env.TENANTRY_PASSWORD;
  if (env !== undefined && env !== '') return env;
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'flags',
    problem: `--as ${flags.as ?? ''} needs the user's password: pipe it in with --password-stdin or set TENANTRY_PASSWORD`,
  });
}

/** Runs the scan and collects its rows (and skipped tenants). */
async function collect(
  t: Tenantry,
  options: CrossTenantOptions & { asOperator?: boolean },
): Promise<{ rows: ScanRow[]; failures: ScanFailure[] }> {
  const failures: ScanFailure[] = [];
  const rows: ScanRow[] = [];
  for await (const row of t.crossTenant(options, failures)) rows.push(row);
  return { rows, failures };
}

/**
 * `tenantry scan [--tenant-where EXPR] [--order-by EXPR] [--skip-group-duplicates] [--json]
 * [--as USER [--password-stdin]] SQL`: as the operator, or — with `--as root@ops` — as a
 * super tenant's user, who logs in first (password from stdin or `TENANTRY_PASSWORD`); a regular
 * tenant's user gets `TENANTRY_ERR_FORBIDDEN`.
 */
export function scanCommand(globals: () => GlobalFlags): Command {
  return new Command('scan')
    .description(
      'run SQL in every selected tenant (TENANT-WHERE) and print the rows tagged _tenant_id, _tenant_name',
    )
    .argument('<sql>', 'the query (one SELECT, run read-only), in tenant-facing names')
    .option(
      '--tenant-where <expr>',
      'which tenants: a condition on id, name, kind, state, e.g. "id > 0 and name < \'M\'"',
    )
    .option('--order-by <expr>', 'merge the tenants’ rows in this order (default: by tenant)')
    .option('--skip-group-duplicates', "return a tenant group's rows once")
    .option('--partial', 'skip failing tenants (listed on stderr) instead of failing')
    .option('--json', 'print one JSON array')
    .option('--as <user>', 'scan as this super tenant’s user (e.g. root@ops) instead of as the operator')
    .option('--password-stdin', 'with --as: read the password from stdin (else TENANTRY_PASSWORD)')
    .action(async (sql: string, opts: ScanFlags) => {
      const password = opts.as === undefined ? undefined : await asPassword(opts);
      await withTenantry(globals(), async (t) => {
        const options: CrossTenantOptions = {
          sql,
          ...(opts.tenantWhere === undefined ? {} : { where: opts.tenantWhere }),
          ...(opts.orderBy === undefined ? {} : { orderBy: opts.orderBy }),
          skipGroupDuplicates: opts.skipGroupDuplicates === true,
          onError: opts.partial ? 'partial' : 'fail',
        };
        const { rows, failures } =
          opts.as === undefined || password === undefined
            ? await collect(t, { ...options, asOperator: true })
            : await t.withPrincipal(await t.login(opts.as, password), () => collect(t, options));
        if (opts.json) printJson(rows);
        else printTable(rows);
        for (const f of failures) err(`skipped ${f.tenant}: ${f.error.message}`);
      });
    });
}
