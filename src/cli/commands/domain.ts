import { Command } from 'commander';
import type { Domain } from '../../identity/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, out, printJson, printTable } from '../output.js';

function row(d: Domain): Record<string, unknown> {
  return {
    name: d.name === '' ? "''" : d.name,
    tenant: d.tenant.name,
    tenant_id: d.tenant.id,
    auth_system: d.authSystem,
    created_at: d.createdAt,
  };
}

/** `tenantry domain add|list|remove`: sign-on domains, each mapping its users to one tenant. */
export function domainCommand(globals: () => GlobalFlags): Command {
  const domain = new Command('domain').description(
    'sign-on domains: user@domain acts for the domain’s tenant',
  );

  domain
    .command('add <name>')
    .description('add a domain for a tenant (prints its access code once)')
    .requiredOption('--tenant <tenant>', 'the tenant (name, id or uuid) its users act for')
    .option('--auth-system <name>', 'builtin, or an authenticator registered in the application', 'builtin')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { tenant: string; authSystem: string; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const added = await t.domains.add(name, { tenant: opts.tenant, authSystem: opts.authSystem });
        if (opts.json) {
          printJson(added);
          return;
        }
        printTable([row(added)]);
        err('the access code is shown once; read it again with the library (domains.accessCode)');
        out(`access code: ${added.accessCode}`);
      });
    });

  domain
    .command('list')
    .description("list domains (the blank domain '' is the default tenant’s)")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const list = await t.domains.list();
        if (opts.json) printJson(list);
        else printTable(list.map(row));
      });
    });

  domain
    .command('remove <name>')
    .description('remove a domain with its users and access code')
    .action(async (name: string) => {
      await withTenantry(globals(), async (t) => {
        await t.domains.remove(name);
        out(`domain ${name} removed`);
      });
    });

  return domain;
}
