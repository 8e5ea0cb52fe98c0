import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson } from '../output.js';
import { readPassword, type PasswordFlags } from './user.js';

/** `tenantry principal seal|show`: log a user in to a sealed principal, and read one back. */
export function principalCommand(globals: () => GlobalFlags): Command {
  const principal = new Command('principal').description('sealed principals (single sign-on tokens)');

  principal
    .command('seal')
    .description('log a user in and print its sealed principal alone on stdout')
    .requiredOption('--user <user>', 'the user, e.g. alice@HomeDepot')
    .option('--password-stdin', 'read the password from stdin')
    .option('--password <password>', 'the password (visible in the process list: prefer --password-stdin)')
    .option('--expires-in <seconds>', 'lifetime in seconds', '3600')
    .action(async (opts: PasswordFlags & { user: string; expiresIn: string }) => {
      const password = await readPassword(opts);
      await withTenantry(globals(), async (t) => {
        out(await t.login(opts.user, password, { expiresInSeconds: Number(opts.expiresIn) }));
      });
    });

  principal
    .command('show <token>')
    .description('verify a principal and print its claims as JSON')
    .action(async (token: string) => {
      await withTenantry(globals(), async (t) => {
        const claims = await t.principals.open(token);
        printJson(claims);
      });
    });

  return principal;
}
