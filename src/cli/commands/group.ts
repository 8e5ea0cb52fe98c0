import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';
import type { GroupInfo } from '../../tables/index.js';

function show(groups: readonly GroupInfo[], json: boolean | undefined): void {
  if (json) printJson(groups);
  else printTable(groups.map((g) => ({ name: g.name, table: g.table, members: g.members.join(', ') })));
}

/** `tenantry group create|list|add|remove|drop`: tenants sharing one segment of a table. */
export function groupCommand(globals: () => GlobalFlags): Command {
  const group = new Command('group').description(
    'tenant groups: tenants sharing one data segment of a table',
  );

  group
    .command('create <name>')
    .description('create a group over a multi-tenant table')
    .requiredOption('--table <table>', 'the multi-tenant table, e.g. item or public.item')
    .requiredOption('--tenants <names>', 'comma-separated member tenants')
    .option('--merge', "move members' existing rows into the group's segment")
    .option('--json', 'print JSON')
    .action(
      async (name: string, opts: { table: string; tenants: string; merge?: boolean; json?: boolean }) => {
        await withTenantry(globals(), async (t) => {
          const tenants = opts.tenants
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          show(
            [await t.groups.create(name, { table: opts.table, tenants, merge: opts.merge === true })],
            opts.json,
          );
        });
      },
    );

  group
    .command('list')
    .description('list groups and their members')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => show(await t.groups.list(), opts.json));
    });

  group
    .command('add <group> <tenant>')
    .description('add a tenant to a group')
    .option('--merge', "move the tenant's existing rows into the group's segment")
    .action(async (name: string, tenant: string, opts: { merge?: boolean }) => {
      await withTenantry(globals(), async (t) =>
        show([await t.groups.addMember(name, tenant, { merge: opts.merge === true })], false),
      );
    });

  group
    .command('remove <group> <tenant>')
    .description("remove a tenant from a group (the group's rows stay with the group)")
    .action(async (name: string, tenant: string) => {
      await withTenantry(globals(), async (t) => show([await t.groups.removeMember(name, tenant)], false));
    });

  group
    .command('drop <group>')
    .description('delete a group and its rows (needs --force)')
    .option('--force', 'really delete')
    .action(async (name: string, opts: { force?: boolean }) => {
      await withTenantry(globals(), async (t) =>
        out(
          `dropped group ${name}: ${await t.groups.drop(name, { force: opts.force === true })} rows deleted`,
        ),
      );
    });

  return group;
}
