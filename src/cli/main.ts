import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { isTenantryError } from '../errors.js';
import { auditCommand } from './commands/audit.js';
import { domainCommand } from './commands/domain.js';
import { groupCommand } from './commands/group.js';
import { rotateKeyCommand } from './commands/key.js';
import { migrateCommand } from './commands/migrate.js';
import { migrateDefaultCommand } from './commands/migrate-default.js';
import { scanCommand } from './commands/scan.js';
import { tokenCommand } from './commands/token.js';
import { principalCommand } from './commands/principal.js';
import { jobsCommand } from './commands/jobs.js';
import { sequenceCommand } from './commands/sequence.js';
import { serveCommand } from './commands/serve.js';
import { serverCommand } from './commands/server.js';
import { sqlCommand } from './commands/sql.js';
import { tableCommand } from './commands/table.js';
import { tenantCommand } from './commands/tenant.js';
import { userCommand } from './commands/user.js';
import type { GlobalFlags } from './connect.js';
import { err } from './output.js';

const { version } = createRequire(import.meta.url)('../../../package.json') as { version: string };

/** Exit codes: 0 ok, 1 error (one line on stderr), 2 usage. */
const EXIT_OK = 0;
const EXIT_ERROR = 1;
const EXIT_USAGE = 2;

function build(): Command {
  const program = new Command('tenantry')
    .description('tenantry: a multi-tenant data layer for PostgreSQL')
    .version(version)
    .option(
      '--data-dir <dir>',
      'data directory of the embedded PostgreSQL (env TENANTRY_DATA_DIR)',
      undefined,
    )
    .option(
      '--database-url <url>',
      'PostgreSQL to use instead of the embedded one (env TENANTRY_DATABASE_URL)',
    )
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false);
  const globals = (): GlobalFlags => program.opts<GlobalFlags>();
  for (const command of [
    serveCommand,
    tenantCommand,
    tableCommand,
    sqlCommand,
    rotateKeyCommand,
    serverCommand,
    groupCommand,
    sequenceCommand,
    jobsCommand,
    migrateDefaultCommand,
    migrateCommand,
    scanCommand,
    tokenCommand,
    domainCommand,
    userCommand,
    principalCommand,
    auditCommand,
  ])
    program.addCommand(command(globals));
  const exitOverride = (command: Command) => {
    command.exitOverride();
    command.configureOutput({ writeErr: (text) => process.stderr.write(text) });
    command.commands.forEach(exitOverride);
  };
  exitOverride(program);
  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and returns the exit code. Errors are printed as
 * one line `TENANTRY_ERR_…: message` (or the PostgreSQL error with its SQLSTATE).
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = build();
  // A command reports a failure it has already printed (repair left something, an interrupted
  // move) by setting process.exitCode; that code is answered, not overwritten with 0.
  const before = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv]);
    const set = Number(process.exitCode ?? EXIT_OK);
    return Number.isInteger(set) ? set : EXIT_ERROR;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT_OK;
      if (error.code === 'commander.help' || error.exitCode === 0) return EXIT_OK;
      return EXIT_USAGE;
    }
    if (isTenantryError(error)) {
      err(`${error.code}: ${error.message}`);
    } else if (
      error instanceof Error &&
      'code' in error &&
      typeof error.code === 'string' &&
      /^[0-9A-Z]{5}$/.test(error.code)
    ) {
      err(`ERROR ${error.code}: ${error.message}`);
    } else {
      err(`error: ${error instanceof Error ? error.message : String(error)}`);
    }
    return EXIT_ERROR;
  } finally {
    process.exitCode = before;
  }
}
