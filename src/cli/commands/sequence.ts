import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

/** `tenantry sequence create|list|drop`: multi-tenant and shared sequences. */
export function sequenceCommand(globals: () => GlobalFlags): Command {
  const sequence = new Command('sequence').description(
    "sequences: per tenant (default) or shared; use tenantry.next('name')",
  );

  sequence
    .command('create <name>')
    .description('create a sequence')
    .option('--shared', 'number across tenants instead of per tenant')
    .option('--start <n>', 'first value', '1')
    .option('--increment <n>', 'step', '1')
    .action(async (name: string, opts: { shared?: boolean; start: string; increment: string }) => {
      await withTenantry(globals(), async (t) => {
        const created = await t.sequences.create(name, {
          shared: opts.shared === true,
          start: Number(opts.start),
          increment: Number(opts.increment),
        });
        out(`sequence ${created.name} (${created.kind}) created; use tenantry.next('${created.name}')`);
      });
    });

  sequence
    .command('list')
    .description('list sequences')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const list = await t.sequences.list();
        if (opts.json) printJson(list);
        else printTable(list.map((s) => ({ ...s })));
      });
    });

  sequence
    .command('drop <name>')
    .description("drop a sequence and every tenant's value of it")
    .action(async (name: string) => {
      await withTenantry(globals(), async (t) => {
        await t.sequences.drop(name);
        out(`sequence ${name} dropped`);
      });
    });

  return sequence;
}
