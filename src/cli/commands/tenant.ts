import { Command, Option } from 'commander';
import type { Tenant } from '../../catalog/index.js';
import { TenantryError } from '../../errors.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';
import { addMoveCommands } from './tenant-move.js';
import { addRepairCommand } from './tenant-repair.js';
import { addTransferCommands } from './tenant-transfer.js';

function row(t: Tenant): Record<string, unknown> {
  return {
    id: t.id,
    name: t.name,
    kind: t.kind,
    state: t.state,
    isolation: t.isolation,
    server: t.server,
    role: t.role ?? '',
    tablespace: t.tablespace ?? '',
    uuid: t.uuid,
  };
}

function show(t: Tenant, json: boolean | undefined): void {
  if (json) printJson(t);
  else printTable([row(t)]);
}

const UNITS: Record<string, number> = { ms: 1, s: 1_000, min: 60_000 };

/**
 * A duration flag in ms: `500ms`, `2s`, `1min`, a bare number of ms, or `none` / `0` (no limit:
 * null). Throws `TENANTRY_ERR_INVALID_ARGUMENT`.
 */
export function parseDuration(text: string): number | null {
  const value = text.trim().toLowerCase();
  if (value === 'none' || value === 'off' || value === '0') return null;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|min)?$/.exec(value);
  if (!match) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'duration',
      problem: `${JSON.stringify(text)} is not a duration such as 500ms, 2s or 1min (or none)`,
    });
  }
  return Math.round(Number(match[1]) * (UNITS[match[2] ?? 'ms'] ?? 1));
}

interface CreateFlags {
  kind: 'regular' | 'super';
  isolation: 'shared' | 'schema' | 'database';
  loginRole?: boolean;
  server: string;
  tablespace?: string;
  json?: boolean;
}

/** `tenantry tenant create|list|show|disable|enable|lock|unlock|set-tablespace|drop`. */
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
    .option('--tablespace <name>', 'tablespace (storage area) of a schema or database tenant')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: CreateFlags) => {
      await withTenantry(globals(), async (t) => {
        const created = await t.tenants.create({
          name,
          kind: opts.kind,
          isolation: opts.isolation,
          loginRole: opts.loginRole === true,
          server: opts.server,
          ...(opts.tablespace === undefined ? {} : { tablespace: opts.tablespace }),
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
    .command('set-tablespace <tenant> <tablespace>')
    .description(
      'move a schema or database tenant into another tablespace (schema: locks its tables while copying; database: ends its sessions)',
    )
    .option('--grace <ms>', 'database tenants: how long open transactions may finish first', '5000')
    .option('--json', 'print JSON')
    .action(async (ref: string, tablespace: string, opts: { grace: string; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const graceMs = Number(opts.grace);
        show(await t.tenants.setTablespace(ref, tablespace, { graceMs }), opts.json);
      });
    });

  tenant
    .command('limits <tenant>')
    .description("set a tenant's limits (every face: library, gateway, HTTP); without options, show them")
    .option(
      '--statement-timeout <duration>',
      'cancel each statement of the tenant after this long (e.g. 500ms, 2s, 1min; none: no limit)',
    )
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { statementTimeout?: string; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const changed =
          opts.statementTimeout === undefined
            ? await t.tenants.show(ref)
            : await t.tenants.setLimits(ref, { statementTimeoutMs: parseDuration(opts.statementTimeout) });
        const limits = { tenant: changed.name, statementTimeoutMs: changed.statementTimeoutMs };
        if (opts.json) printJson(limits);
        else printTable([{ ...limits, statementTimeoutMs: limits.statementTimeoutMs ?? 'none' }]);
      });
    });

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

  addTransferCommands(tenant, globals);
  addMoveCommands(tenant, globals);
  addRepairCommand(tenant, globals);
  return tenant;
}
