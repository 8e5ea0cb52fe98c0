import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { Command, Option } from 'commander';
import { TenantryError } from '../../errors.js';
import { exportTenant, importTenant, type TransferProgress } from '../../fleet/transfer/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { err, out } from '../output.js';

/** Renders transfer progress on stderr: one redrawn line on a terminal, plain lines elsewhere. */
class TransferProgressView {
  readonly #tty = process.stderr.isTTY === true;
  #lastTenth = -1;
  #lastDraw = 0;
  #drawn = false;
  #phase = '';

  update(event: TransferProgress): void {
    const percent = event.totalRows === 0 ? 100 : Math.floor((event.rows * 100) / event.totalRows);
    if (event.phase !== 'rows') {
      if (event.phase !== this.#phase)
        this.#line(`${event.phase === 'done' ? 'done' : event.phase}: ${event.rows} rows`);
      this.#phase = event.phase;
      return;
    }
    this.#phase = 'rows';
    const text =
      `rows: ${event.rows}/${event.totalRows} (${Math.min(percent, 100)}%) ${event.table ?? ''}`.trimEnd();
    if (this.#tty) {
      const now = Date.now();
      if (now - this.#lastDraw < 80 && event.rows < event.totalRows) return;
      this.#lastDraw = now;
      process.stderr.write(`\r\u001b[2K${text}`);
      this.#drawn = true;
      return;
    }
    const tenth = Math.min(10, Math.floor(percent / 10));
    if (tenth <= this.#lastTenth) return;
    this.#lastTenth = tenth;
    this.#line(text);
  }

  finish(): void {
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }

  #line(text: string): void {
    if (this.#drawn) process.stderr.write('\r\u001b[2K');
    this.#drawn = false;
    err(text);
  }
}

/** Ctrl-C once: stop cleanly (nothing half-written is kept). Twice: exit at once, after `last`. */
function interruptible(what: string, last: () => void = () => undefined) {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) {
      last();
      err(`stopped; run the ${what} again (a killed import's leftover is removed by the next import).`);
      process.exit(130);
    }
    controller.abort();
    err(`\nstopping the ${what}; removing what it wrote (Ctrl-C again to stop at once)…`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    done: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

function batchSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 100_000) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'batch size',
      problem: `${value} is not an integer from 1 to 100000`,
    });
  }
  return n;
}

interface ExportFlags {
  output: string;
  plain?: boolean;
  batchSize: string;
}

interface ImportFlags {
  as: string;
  isolation?: 'shared' | 'schema' | 'database';
  server?: string;
  batchSize: string;
}

/**
 * Adds `tenant export NAME -o FILE` and `tenant import FILE --as NEWNAME [--server S]
 * [--isolation M]` to the `tenant` command (docs/fleet.md, "Export and restore").
 */
export function addTransferCommands(tenant: Command, globals: () => GlobalFlags): void {
  tenant
    .command('export <tenant>')
    .description('write the tenant’s rows and own objects to a portable file (gzip’d JSON lines)')
    .requiredOption(
      '-o, --output <file>',
      'the file to write (written as FILE.partial, renamed when complete)',
    )
    .option('--plain', 'do not gzip (plain JSON lines)')
    .option('--batch-size <n>', 'rows read per batch', '1000')
    .action(async (ref: string, opts: ExportFlags) => {
      const size = batchSize(opts.batchSize);
      const partial = `${opts.output}.partial`;
      const view = new TransferProgressView();
      const stop = interruptible('export', () => rmSync(partial, { force: true }));
      try {
        const summary = await withTenantry(globals(), (t) =>
          exportTenant(t, ref, createWriteStream(partial), {
            batchSize: size,
            gzip: opts.plain !== true,
            signal: stop.signal,
            onProgress: (e) => view.update(e),
          }),
        );
        renameSync(partial, opts.output);
        const rows = summary.tables.reduce((n, s) => n + s.rows, 0);
        out(
          `exported tenant ${summary.tenant} (${summary.isolation}): ${rows} rows in ${summary.tables.length} tables, ${summary.objects} objects → ${opts.output}`,
        );
      } catch (error) {
        rmSync(partial, { force: true });
        throw error;
      } finally {
        view.finish();
        stop.done();
      }
    });

  tenant
    .command('import <file>')
    .description('restore an exported tenant as a new tenant (all or nothing)')
    .requiredOption('--as <name>', 'the new tenant’s name')
    .addOption(
      new Option('--isolation <model>', 'where its rows go (default: as exported)').choices([
        'shared',
        'schema',
        'database',
      ]),
    )
    .option('--server <name>', 'registered server of a database tenant', 'main')
    .option('--batch-size <n>', 'rows per INSERT', '1000')
    .action(async (file: string, opts: ImportFlags) => {
      const size = batchSize(opts.batchSize);
      const view = new TransferProgressView();
      const stop = interruptible('import');
      try {
        const summary = await withTenantry(globals(), (t) =>
          importTenant(t, file === '-' ? process.stdin : createReadStream(file), {
            as: opts.as,
            ...(opts.isolation === undefined ? {} : { isolation: opts.isolation }),
            ...(opts.server === undefined ? {} : { server: opts.server }),
            batchSize: size,
            signal: stop.signal,
            onProgress: (e) => view.update(e),
          }),
        );
        view.finish();
        for (const name of summary.removedLeftovers)
          err(`removed the leftover of an interrupted import: ${name}`);
        const rows = summary.tables.reduce((n, s) => n + s.rows, 0);
        out(
          `imported tenant ${summary.tenant.name} (${summary.tenant.isolation} on ${summary.tenant.server}): ${rows} rows in ${summary.tables.length} tables, ${summary.objects} objects; checksums match`,
        );
      } finally {
        view.finish();
        stop.done();
      }
    });
}
