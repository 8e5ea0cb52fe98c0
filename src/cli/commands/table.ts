import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { printJson, printTable } from '../output.js';

/** `tenantry table multi-tenant|shared|list`. */
export function tableCommand(globals: () => GlobalFlags): Command {
  const table = new Command('table').description('declare multi-tenant and shared tables');

  table
    .command('multi-tenant <table>')
    .description('make schema.table multi-tenant: forced row-level security on its tenant column')
    .option('--tenant-column <column>', 'the tenant column (first primary-key column)', 'tenant_id')
    .action(async (name: string, opts: { tenantColumn: string }) => {
      await withTenantry(globals(), async (t) => {
        const registered = await t.tables.multiTenant(name, { tenantColumn: opts.tenantColumn });
        printTable([{ ...registered }]);
      });
    });

  table
    .command('shared <table>')
    .description('make schema.table shared: readable by every tenant')
    .option('--writable', 'let tenants write it too')
    .action(async (name: string, opts: { writable?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const registered = await t.tables.shared(name, { writable: opts.writable === true });
        printTable([{ ...registered }]);
      });
    });

  table
    .command('add-column <table> <column> <type>')
    .description("add a column of the tenant's own to its view of a multi-tenant table (Phoenix)")
    .requiredOption('--tenant <tenant>', 'the tenant')
    .action(async (name: string, column: string, type: string, opts: { tenant: string }) => {
      await withTenantry(globals(), async (t) => {
        await t.withTenant(opts.tenant, (db) =>
          db.query('SELECT tenantry.add_tenant_column($1, $2, $3)', [name, column, type]),
        );
        process.stdout.write(`added ${column} ${type} to ${opts.tenant}'s ${name}\n`);
      });
    });

  table
    .command('add-index <table> <columns...>')
    .description("create an index serving a tenant's queries on its view of a multi-tenant table")
    .requiredOption('--tenant <tenant>', 'the tenant')
    .action(async (name: string, columns: string[], opts: { tenant: string }) => {
      await withTenantry(globals(), async (t) => {
        const { rows } = await t.withTenant(opts.tenant, (db) =>
          db.query<{ index: string }>('SELECT tenantry.create_tenant_index($1, $2) AS index', [
            name,
            columns,
          ]),
        );
        process.stdout.write(`index ${rows[0]?.index ?? ''} serves ${opts.tenant}'s ${name}\n`);
      });
    });

  table
    .command('list')
    .description('list registered tables')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), (t) => {
        const tables = t.tables.list();
        if (opts.json) printJson(tables);
        else printTable(tables.map((r) => ({ ...r })));
        return Promise.resolve();
      });
    });

  return table;
}
