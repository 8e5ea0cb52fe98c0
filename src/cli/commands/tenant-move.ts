import { Command, Option } from 'commander';
import type { MoveProgress, MoveReport, MoveTarget } from '../../fleet/move/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, out, printJson, printTable } from '../output.js';

interface MoveFlags {
  to?: MoveTarget;
  server?: string;
  abort?: boolean;
  json?: boolean;
}

/** Progress on stderr: a line per phase, and copy / catch-up counts at most every second. */
function progressPrinter(): (event: MoveProgress) => void {
  let last = 0;
  return (event) => {
    const now = Date.now();
    if (event.message) {
      err(`${event.phase}: ${event.message}`);
      return;
    }
    if (now - last < 1000) return;
    last = now;
    if (event.phase === 'copy') err(`copy: ${event.rows ?? 0} rows (${event.table ?? ''})`);
    else if (event.phase === 'catchup') err(`catch-up: ${event.changes ?? 0} changes applied`);
  };
}

function summary(report: MoveReport): string {
  const seconds = report.totalMs / 1000;
  return [
    `moved ${report.tenant}: ${report.from.isolation} on ${report.from.server} → ${report.to.isolation} on ${report.to.server}`,
    `${report.rows} rows copied in ${report.copyMs} ms, ${report.changes} changes caught up, ${report.verifiedTables} tables verified`,
    `write pause ${report.pauseMs} ms, total ${seconds.toFixed(1)} s`,
  ].join('\n');
}

/** Adds `tenant move NAME --to …` and `tenant moves` to the `tenant` command. */
export function addMoveCommands(tenant: Command, globals: () => GlobalFlags): void {
  tenant
    .command('move <name>')
    .description(
      'move a tenant online between shared tables and its own database, or to another server: ' +
        'it keeps writing except for a short pause at the cut-over; rerun to resume after an interruption',
    )
    .addOption(new Option('--to <model>', 'where to').choices(['shared', 'schema', 'database']))
    .option('--server <name>', 'registered server of the new copy (default main)')
    .option('--abort', 'roll back an unfinished move (the tenant stays where it was)')
    .option('--json', 'print the report as JSON')
    .action(async (name: string, opts: MoveFlags) => {
      await withTenantry(globals(), async (t) => {
        if (opts.abort) {
          const outcome = await t.moves.abort(name);
          if (opts.json) printJson({ tenant: name, outcome });
          else out(`${name}: move ${outcome}`);
          return;
        }
        const pending = (await t.moves.list()).find((m) => m.tenant.toLowerCase() === name.toLowerCase());
        const to = opts.to ?? pending?.target.isolation;
        if (!to) {
          err('say where to: --to shared|schema|database');
          process.exitCode = 1;
          return;
        }
        const controller = new AbortController();
        const stop = () => {
          err('\nstopping after the current batch; run the same command again to resume (or --abort)…');
          controller.abort();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const report = await t.moves.move(name, {
            to,
            ...(opts.server !== undefined
              ? { server: opts.server }
              : pending
                ? { server: pending.target.server }
                : {}),
            onProgress: progressPrinter(),
            signal: controller.signal,
          });
          if (opts.json) printJson(report);
          else out(summary(report));
        } catch (error) {
          if (!controller.signal.aborted) throw error;
          err(`interrupted: the move of ${name} is recorded; run the same command to resume it, or --abort`);
          process.exitCode = 130;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });

  tenant
    .command('moves')
    .description('list the tenant moves under way (phase, source, target)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const moves = await t.moves.list();
        if (opts.json) printJson(moves);
        else
          printTable(
            moves.map((m) => ({
              tenant: m.tenant,
              phase: m.phase,
              from: `${m.source.isolation}@${m.source.server}`,
              to: `${m.target.isolation}@${m.target.server}`,
            })),
          );
      });
    });
}
