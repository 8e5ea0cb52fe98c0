import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

/** `tenantry server add|list|create-tablespace|remove`: the servers tenants can be placed on. */
export function serverCommand(globals: () => GlobalFlags): Command {
  const server = new Command('server').description(
    'register the PostgreSQL servers tenants can be placed on',
  );

  server
    .command('add <name> <url>')
    .description(
      'register a server (operator URL: may create roles and databases); its URL is sealed in the catalog',
    )
    .option('--budget <n>', 'connections this process may open to it (default: from max_connections)')
    .action(async (name: string, url: string, opts: { budget?: string }) => {
      await withTenantry(globals(), async (t) => {
        const budget = opts.budget === undefined ? undefined : Number(opts.budget);
        await t.servers.add(name, url, budget === undefined ? {} : { budget });
        out(`server ${name} added`);
      });
    });

  server
    .command('list')
    .description('list servers and how many tenants each holds')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const servers = await t.servers.list();
        if (opts.json) printJson(servers);
        else
          printTable(servers.map((s) => ({ name: s.name, budget: s.budget ?? 'auto', tenants: s.tenants })));
      });
    });

  server
    .command('create-tablespace <server> <tablespace>')
    .description('create a tablespace (storage area for schema and database tenants) on a registered server')
    .requiredOption(
      '--location <dir>',
      'absolute, empty directory on that machine, owned by the OS user PostgreSQL runs as',
    )
    .action(async (name: string, tablespace: string, opts: { location: string }) => {
      await withTenantry(globals(), async (t) => {
        await t.servers.createTablespace(name, tablespace, opts.location);
        out(`tablespace ${tablespace} created on server ${name}`);
      });
    });

  server
    .command('remove <name>')
    .description('forget a server that holds no tenant')
    .action(async (name: string) => {
      await withTenantry(globals(), async (t) => {
        await t.servers.remove(name);
        out(`server ${name} removed`);
      });
    });

  return server;
}
