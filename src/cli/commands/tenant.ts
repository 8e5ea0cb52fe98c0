import { Command, Option } from 'commander';
import type { Tenant } from '../../catalog/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

function row(t: Tenant): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    kind: t.kind,
    state: t.state,
    isolation: t.isolation,
    server: t.server,
    role: t.role ?? '',
    uuid: t.uuid,
  };
}

function show(t: Tenant, json: boolean | undefined): void {
  if (json) printJson(t);
  else printTable([row(t)]);
}

interface CreateFlags {
  kind: 'regular' | 'super';
  isolation: 'shared' | 'schema' | 'database';
  loginRole?: boolean;
  server: string;
  json?: boolean;
}

/** `tenantry tenant create|list|show|disable|enable|lock|unlock|drop`. */
export function tenantCommand(globals: () => GlobalFlags): Command {
  const tenant = new Command('tenant').description('create and manage tenants');

  tenant
    .command('create <name>')
    .description('create a tenant (online: no table lock)')
    .addOption(
      new Option('--kind <kind>', 'regular or super').choices(['regular', 'super']).default('regular'),
    )
    .addOption(
      new Option('--isolation <model>', 'where its rows live')
        .choices(['shared', 'schema', 'database'])
        .default('shared'),
    )
    .option(
      '--login-role',
      'give a shared tenant its own login role (schema and database tenants always have one)',
    )
    .option('--server <name>', 'registered server of a database tenant', 'main')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: CreateFlags) => {
      await withTenantry(globals(), async (t) => {
        const created = await t.tenants.create({
          name,
          kind: opts.kind,
          isolation: opts.isolation,
          loginRole: opts.loginRole === true,
          server: opts.server,
        });
        show(created, opts.json);
      });
    });

  tenant
    .command('list')
    .description('list tenants')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const tenants = await t.tenants.list();
        if (opts.json) printJson(tenants);
        else printTable(tenants.map(row));
      });
    });

  tenant
    .command('show <tenant>')
    .description('show one tenant (by name, id or uuid)')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => show(await t.tenants.show(ref), opts.json));
    });

  const transitions = {
    disable: 'refuse every new access (in-flight transactions finish)',
    enable: 'make a disabled or locked tenant active',
    lock: 'leave the tenant reachable by the operator only',
    unlock: 'make a locked tenant active',
  } as const;
  for (const [verb, description] of Object.entries(transitions) as [keyof typeof transitions, string][]) {
    tenant
      .command(`${verb} <tenant>`)
      .description(description)
      .option('--json', 'print JSON')
      .action(async (ref: string, opts: { json?: boolean }) => {
        await withTenantry(globals(), async (t) => show(await t.tenants[verb](ref), opts.json));
      });
  }

  for (const verb of ['allocate', 'deallocate'] as const) {
    tenant
      .command(`${verb} <tenant>`)
      .description(`${verb} the tenant's data segment of a multi-tenant table`)
      .requiredOption('--table <table>', 'the multi-tenant table')
      .action(async (ref: string, opts: { table: string }) => {
        await withTenantry(globals(), async (t) => {
          await t.segments[verb](ref, opts.table);
          out(`${verb}d ${ref} in ${opts.table}`);
        });
      });
  }

  tenant
    .command('drop <tenant>')
    .description('delete a tenant and all its rows, in one transaction (needs --force)')
    .option('--force', 'really delete')
    .action(async (ref: string, opts: { force?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const deleted = await t.tenants.drop(ref, { force: opts.force === true });
        const total = Object.values(deleted).reduce((a, b) => a + b, 0);
        out(`dropped tenant ${ref}: ${total} rows deleted`);
        for (const [table, n] of Object.entries(deleted)) out(`  ${table}: ${n}`);
      });
    });

  return tenant;
}
