import { Command, Option } from 'commander';
import { TenantryError } from '../../errors.js';
import type { User } from '../../identity/index.js';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out, printJson, printTable } from '../output.js';

/** The password flags a command accepts: from stdin (preferred) or inline (for scripts). */
export interface PasswordFlags {
  passwordStdin?: boolean;
  password?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The password of `--password-stdin` (all of stdin, without one trailing newline) or
 * `--password`. Throws `TENANTRY_ERR_INVALID_ARGUMENT` when neither or both are given.
 */
export async function readPassword(flags: PasswordFlags): Promise<string> {
  if (flags.passwordStdin === true && flags.password !== undefined) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'flags',
      problem: 'give --password-stdin or --password, not both',
    });
  }
  if (flags.password !== undefined) return flags.password;
  if (flags.passwordStdin === true) return (await readStdin()).replace(/\r?\n$/, '');
  throw new TenantryError('INVALID_ARGUMENT', {
    what: 'flags',
    problem: 'a password is needed: pipe it in with --password-stdin (or pass --password)',
  });
}

function row(u: User): Record<string, unknown> {
  return {
    user: u.ref,
    domain: u.domain,
    tenant: u.tenant.name,
    permission: u.permission,
    created_at: u.createdAt,
  };
}

function passwordOptions(command: Command): Command {
  return command
    .option('--password-stdin', 'read the password from stdin')
    .option('--password <password>', 'the password (visible in the process list: prefer --password-stdin)');
}

/** `tenantry user add|list|remove|passwd`: tenantry's own users, `user@domain`. */
export function userCommand(globals: () => GlobalFlags): Command {
  const user = new Command('user').description('users (user@domain) that log in to their domain’s tenant');

  passwordOptions(user.command('add <user>').description('add a user, e.g. alice@HomeDepot'))
    .addOption(
      new Option('--permission <permission>', 'what the user may do')
        .choices(['read', 'write', 'admin'])
        .default('write'),
    )
    .option('--json', 'print JSON')
    .action(
      async (
        ref: string,
        opts: PasswordFlags & { permission: 'read' | 'write' | 'admin'; json?: boolean },
      ) => {
        const password =
          opts.password === undefined && opts.passwordStdin !== true ? undefined : await readPassword(opts);
        await withTenantry(globals(), async (t) => {
          const added = await t.users.add(ref, {
            permission: opts.permission,
            ...(password === undefined ? {} : { password }),
          });
          if (opts.json) printJson(added);
          else printTable([row(added)]);
        });
      },
    );

  user
    .command('list')
    .description('list users')
    .option('--domain <domain>', 'only the users of this domain')
    .option('--json', 'print JSON')
    .action(async (opts: { domain?: string; json?: boolean }) => {
      await withTenantry(globals(), async (t) => {
        const list = await t.users.list(opts.domain === undefined ? {} : { domain: opts.domain });
        if (opts.json) printJson(list);
        else printTable(list.map(row));
      });
    });

  user
    .command('remove <user>')
    .description('remove a user (its principals are refused from then on)')
    .action(async (ref: string) => {
      await withTenantry(globals(), async (t) => {
        await t.users.remove(ref);
        out(`user ${ref} removed`);
      });
    });

  passwordOptions(user.command('passwd <user>').description('set a user’s password')).action(
    async (ref: string, opts: PasswordFlags) => {
      const password = await readPassword(opts);
      await withTenantry(globals(), async (t) => {
        await t.users.setPassword(ref, password);
        out(`password of ${ref} changed`);
      });
    },
  );

  return user;
}
