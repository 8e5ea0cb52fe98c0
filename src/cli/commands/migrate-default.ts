import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson } from '../output.js';

/** `tenantry migrate-default --table T --tenant-from COLUMN`: seed 004's move out of the default segment. */
export function migrateDefaultCommand(globals: () => GlobalFlags): Command {
  return new Command('migrate-default')
    .description("move rows from the default tenant's segment to the tenant each names (batched, resumable)")
    .requiredOption('--table <table>', 'the multi-tenant table')
    .requiredOption('--tenant-from <column>', "the column holding each row's tenant name")
    .option('--batch <n>', 'rows per transaction', '1000')
    .option('--json', 'print JSON')
    .action(async (opts: { table: string; tenantFrom: string; batch: string; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const result = await t.segments.migrateDefault(opts.table, opts.tenantFrom, {
          batchSize: Number(opts.batch),
        });
        if (opts.json) {
          printJson(result);
          return;
        }
        const total = Object.values(result.moved).reduce((a, b) => a + b, 0);
        out(`moved ${total} rows in ${result.batches} batches`);
        for (const [tenant, n] of Object.entries(result.moved)) out(`  ${tenant}: ${n}`);
        for (const left of result.unknown)
          out(`  left in the default segment (no such tenant): ${left.value}: ${left.rows}`);
      });
    });
}
