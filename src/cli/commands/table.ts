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
