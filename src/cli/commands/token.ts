import { Command } from 'commander';
import { withTenantry, type GlobalFlags } from '../connect.js';
import { out } from '../output.js';

/** Parses `90`, `90s`, `15m`, `1h` into seconds. */
function ttlSeconds(text: string): number {
  const match = /^(\d+)([smh]?)$/.exec(text.trim());
  if (!match) return Number.NaN;
  return Number(match[1]) * ({ s: 1, m: 60, h: 3600, '': 1 }[match[2] as 's' | 'm' | 'h' | ''] ?? 1);
}

/** `tenantry token delegate|revoke|rotate-key`: delegation tokens (seed 000). */
export function tokenCommand(globals: () => GlobalFlags): Command {
  const token = new Command('token').description(
    'delegation tokens: a trusted service acting for an end user',
  );

  token
    .command('delegate')
    .description('issue a short-lived token for a user; prints the token alone on stdout')
    .requiredOption('--user <user>', 'the end user, user@domain')
    .option('--service <name>', 'the service identity acting for the user', 'tenantry-cli')
    .option('--ttl <ttl>', 'lifetime: 90s, 15m, 1h (at most 24h)', '1h')
    .option('--audience <aud>', 'audience', 'tenantry')
    .action(async (opts: { user: string; service: string; ttl: string; audience: string }) => {
      await withTenantry(globals(), async (t) => {
        const issued = await t.tokens.issue({
          user: opts.user,
          service: opts.service,
          ttlSeconds: ttlSeconds(opts.ttl),
          audience: opts.audience,
        });
        out(issued.token);
        process.stderr.write(`token id ${issued.id}, expires ${issued.expiresAt.toISOString()}\n`);
      });
    });

  token
    .command('revoke <id>')
    .description('revoke a token by id (every process refuses it from then on)')
    .action(async (id: string) => {
      await withTenantry(globals(), async (t) => {
        await t.tokens.revoke(id);
        out(`token ${id} revoked`);
      });
    });

  token
    .command('rotate-key')
    .description('add a new signing key; tokens signed with older keys keep verifying')
    .action(async () => {
      await withTenantry(globals(), async (t) => out(`new delegation key ${await t.tokens.rotateKey()}`));
    });

  return token;
}
