import { randomBytes } from 'node:crypto';
import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import {
  BUILTIN_AUTH,
  mockScramVerifier,
  parseScramVerifier,
  serverSignature,
  tryParseUserRef,
  verifyClientProof,
  type Permission,
} from '../identity/index.js';
import type { GatewayHost } from './host.js';
import {
  AUTH_CLEARTEXT,
  AUTH_SASL,
  AUTH_SASL_CONTINUE,
  AUTH_SASL_FINAL,
  authentication,
  cstring,
} from './protocol.js';
import type { StartupRequest } from './startup-params.js';

/** The password-message exchange of one connection during authentication. */
export interface AuthChannel {
  send(bytes: Buffer): void;
  /** The body of the client's next PasswordMessage / SASL response (`p`). */
  receive(): Promise<Buffer>;
  /** TLS is in use. */
  readonly secure: boolean;
  /** The client connected over loopback or a Unix socket. */
  readonly loopback: boolean;
}

/** Who a gateway connection acts as, once authenticated. */
export interface GatewayIdentity {
  /** The user as logged in (`alice@HomeDepot`). */
  readonly user: string;
  /** The user's tenant (a super tenant for `root@ops`). */
  readonly tenant: Tenant;
  readonly permission: Permission;
  /** A super tenant's connect-time effective tenant. */
  readonly effective: Tenant | undefined;
  /** Re-checks that the user (or token) is still valid; throws the reason when not. */
  revalidate(): Promise<void>;
}

/** How long a token-authenticated session may renew itself past its token's expiry. */
const MAX_RENEWED_SESSION_MS = 24 * 3600 * 1000;
const MECHANISM = 'SCRAM-SHA-256';

function attributes(message: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of message.split(',')) {
    if (part.length >= 2 && part[1] === '=') map.set(part[0] as string, part.slice(2));
  }
  return map;
}

/** Runs SCRAM-SHA-256 for `user` (a mock verifier for unknown users); throws `AUTH` on a bad proof. */
async function scram(
  channel: AuthChannel,
  user: string,
  stored: string | null | undefined,
  secret: Buffer,
): Promise<boolean> {
  const real = parseScramVerifier(stored);
  const verifier = real ?? mockScramVerifier(user.toLowerCase(), secret);
  channel.send(authentication(AUTH_SASL, Buffer.concat([cstring(MECHANISM), Buffer.from([0])])));
  const initial = await channel.receive();
  const mechanismEnd = initial.indexOf(0);
  if (mechanismEnd < 0 || initial.toString('utf8', 0, mechanismEnd) !== MECHANISM)
    throw new TenantryError('AUTH');
  const clientFirst = initial.toString('utf8', mechanismEnd + 5);
  const gs2 = /^([ny]),(?:a=[^,]*)?,/.exec(clientFirst);
  if (!gs2) throw new TenantryError('AUTH');
  const clientFirstBare = clientFirst.slice(gs2[0].length);
  const clientNonce = attributes(clientFirstBare).get('r');
  if (!clientNonce) throw new TenantryError('AUTH');
  const nonce = clientNonce + randomBytes(18).toString('base64');
  const serverFirst = `r=${nonce},s=${verifier.salt.toString('base64')},i=${verifier.iterations}`;
  channel.send(authentication(AUTH_SASL_CONTINUE, Buffer.from(serverFirst)));
  const clientFinal = (await channel.receive()).toString('utf8');
  const proofAt = clientFinal.lastIndexOf(',p=');
  const final = attributes(clientFinal);
  const binding = Buffer.from(final.get('c') ?? '', 'base64').toString('utf8');
  if (proofAt < 0 || final.get('r') !== nonce || binding !== gs2[0]) throw new TenantryError('AUTH');
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinal.slice(0, proofAt)}`;
  const proof = Buffer.from(final.get('p') ?? '', 'base64');
  if (!verifyClientProof(verifier, authMessage, proof) || !real) return false;
  channel.send(
    authentication(
      AUTH_SASL_FINAL,
      Buffer.from(`v=${serverSignature(verifier, authMessage).toString('base64')}`),
    ),
  );
  return true;
}

function usable(tenant: Tenant | undefined, name: string): Tenant {
  if (!tenant) throw new TenantryError('AUTH');
  if (tenant.state === 'disabled') throw new TenantryError('TENANT_DISABLED', { tenant: tenant.name });
  if (tenant.state === 'locked') throw new TenantryError('TENANT_LOCKED', { tenant: tenant.name });
  if (tenant.kind === 'group') throw new TenantryError('AUTH', { user: name });
  return tenant;
}

function effectiveTenant(host: GatewayHost, tenant: Tenant, asked: string | undefined): Tenant | undefined {
  if (asked === undefined) return undefined;
  if (tenant.kind !== 'super') {
    throw new TenantryError('FORBIDDEN', {
      problem: 'Only a super tenant may choose a tenant at connect time (options -c tenantry.tenant).',
    });
  }
  const target = host.tenant(/^[0-9]{1,9}$/.test(asked) ? Number(asked) : asked);
  if (!target || target.kind !== 'regular') throw new TenantryError('TENANT_NOT_FOUND', { tenant: asked });
  return usable(target, asked);
}

/**
 * Authenticates a connection: `user@domain` by SCRAM-SHA-256 against the user's verifier;
 * `user@domain+token` or `token` by a cleartext password that carries a sealed principal or a
 * delegation token (TLS or loopback only). Unknown users and wrong passwords fail alike with
 * `TENANTRY_ERR_AUTH`; a disabled or locked tenant with its own error, once the credential was right.
 */
export async function authenticate(
  channel: AuthChannel,
  request: StartupRequest,
  host: GatewayHost,
): Promise<GatewayIdentity> {
  const tokenLogin = request.user === 'token' || request.user.endsWith('+token');
  if (tokenLogin) {
    if (!channel.secure && !channel.loopback) throw new TenantryError('INSECURE_TRANSPORT');
    channel.send(authentication(AUTH_CLEARTEXT));
    const body = await channel.receive();
    const token = body.toString('utf8', 0, Math.max(0, body.indexOf(0)));
    const principal = await host.authorizeToken(token);
    const who = principal.domain === '' ? principal.user : `${principal.user}@${principal.domain}`;
    const claimed = request.user === 'token' ? who : request.user.slice(0, -'+token'.length);
    if (claimed.toLowerCase() !== who.toLowerCase()) throw new TenantryError('AUTH');
    const tenant = usable(host.tenant(principal.tenant.id), who);
    const effective = effectiveTenant(host, tenant, request.effectiveTenant);
    const started = Date.now();
    return {
      user: who,
      tenant,
      permission: principal.permission,
      effective,
      revalidate: async () => {
        usable(host.tenant(tenant.id), who);
        if (effective) usable(host.tenant(effective.id), who);
        // A session outlives its token: once the token has expired, the session renews itself
        // for as long as the token is not revoked and the user still exists in the tenant.
        if (principal.expiresAt.getTime() > Date.now()) {
          await host.authorizeToken(token);
          return;
        }
        if (Date.now() - started > MAX_RENEWED_SESSION_MS)
          throw new TenantryError('TOKEN_EXPIRED', { expiredAt: principal.expiresAt.toISOString() });
        if (await host.revoked(principal.id)) throw new TenantryError('TOKEN_REVOKED', { id: principal.id });
        const user = await host.findUser({ user: principal.user, domain: principal.domain });
        if (!user || user.tenant.id !== tenant.id) throw new TenantryError('AUTH');
      },
    };
  }
  const ref = tryParseUserRef(request.user);
  const record = ref ? await host.findUser(ref) : undefined;
  const builtin = record?.authSystem === BUILTIN_AUTH ? record : undefined;
  const secret = await host.mockSecret();
  if (!(await scram(channel, request.user, builtin?.scramVerifier, secret)) || !builtin || !ref) {
    throw new TenantryError('AUTH');
  }
  const tenant = usable(host.tenant(builtin.tenant.id), builtin.ref);
  const effective = effectiveTenant(host, tenant, request.effectiveTenant);
  return {
    user: builtin.ref,
    tenant,
    permission: builtin.permission,
    effective,
    revalidate: async () => {
      const again = await host.findUser(ref);
      if (!again || again.tenant.id !== tenant.id) throw new TenantryError('AUTH');
      usable(host.tenant(tenant.id), builtin.ref);
      if (effective) usable(host.tenant(effective.id), builtin.ref);
    },
  };
}
