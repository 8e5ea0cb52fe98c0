import { Command, Option } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import type { Permission } from '../../identity/index.js';
import { printJson, printTable } from '../output.js';

/** `tenantry sql --tenant NAME "SQL" [--json] [--identity app|tenant] [--permission read|write|admin]`. */
export function sqlCommand(globals: () => GlobalFlags): Command {
  return new Command('sql')
    .description('run SQL as a tenant (row-level security applies) and print the rows')
    .argument('<sql>', 'the statement(s); with several, the last result is printed')
    .requiredOption('--tenant <tenant>', 'tenant name, id or uuid')
    .option('--json', 'print one JSON array of row objects and nothing else')
    .addOption(
      new Option('--identity <identity>', "run as the shared app role or the tenant's own login role")
        .choices(['app', 'tenant'])
        .default('app'),
    )
    .addOption(
      new Option('--permission <permission>', 'what the SQL may do inside the tenant (docs/rights.md)')
        .choices(['read', 'write', 'admin'])
        .default('admin'),
    )
    .action(
      async (
        sql: string,
        opts: { tenant: string; json?: boolean; identity: 'app' | 'tenant'; permission: Permission },
      ) => {
        await withTenantry(globals(), async (t) => {
          const result = await t.withTenant(opts.tenant, (db) => db.query(sql), {
            identity: opts.identity,
            permission: opts.permission,
          });
          if (opts.json) printJson(result.rows);
          else if (result.fields?.length) printTable(result.rows, result.fields);
          else process.stdout.write(`${result.command ?? 'OK'} ${result.rowCount ?? ''}`.trimEnd() + '\n');
        });
      },
    );
}
