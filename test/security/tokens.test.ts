import { createHmac } from 'node:crypto';
import { decodeJwt } from 'jose';
import { expect } from 'vitest';
import { attack, useFixture, type FaceName, type SecurityFixture } from './harness.js';

// Token attacks on every face that accepts tokens: the library (withPrincipal), the gateway's
// token login and HTTP bearer tokens.
const fx = useFixture('sec_tokens');
const TOKEN_FACES: readonly FaceName[] = ['lib-app', 'gateway', 'http'];

/** What presenting `token` for `tenant` got: the tenant it acted as, or the tenantry error code. */
async function present(
  f: SecurityFixture,
  face: FaceName,
  token: string,
  tenant = 'HomeDepot',
): Promise<string> {
  const codeOf = (text: string) => /TENANTRY_ERR_[A-Z_]+/.exec(text)?.[0] ?? text;
  if (face === 'http') {
    const response = await f.http.inject({
      method: 'POST',
      url: '/v1/sql',
      headers: { authorization: `Bearer ${token}`, 'x-tenant-id': tenant },
      payload: { sql: 'SELECT tenantry.tenant_name() AS t' },
    });
    const body = response.json<{ rows?: { t: string }[]; code?: string }>();
    return response.statusCode === 200 ? `ok:${body.rows?.[0]?.t}` : `${response.statusCode}:${body.code}`;
  }
  if (face === 'gateway') {
    try {
      const client = await f.gw.connect('token', token);
      const { rows } = await client.query<{ t: string }>('SELECT tenantry.tenant_name() AS t');
      return `ok:${rows[0]?.t}`;
    } catch (error) {
      return codeOf(String((error as Error).message));
    }
  }
  try {
    return `ok:${await f.tenantry.withPrincipal(token, async (db) => (await db.query<{ t: string }>('SELECT tenantry.tenant_name() AS t')).rows[0]?.t)}`;
  } catch (error) {
    return codeOf(String((error as { code?: string }).code ?? (error as Error).message));
  }
}

/** Expects `token` refused with `code` (HTTP: 401 with it) on `face`. */
async function refused(f: SecurityFixture, face: FaceName, token: string, code: string): Promise<void> {
  expect(await present(f, face, token)).toBe(face === 'http' ? `401:${code}` : code);
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A principal's claims for alice, as tenantry seals them (taken from a real login). */
async function aliceClaims(f: SecurityFixture): Promise<Record<string, unknown>> {
  return decodeJwt(await f.tenantry.login('alice@HomeDepot', 'demo'));
}

/** Signs header.payload with HMAC-SHA-256 or -512 under `key` (the algorithm the header claims aside). */
function hmac(header: object, payload: object, key: Buffer, hash: 'sha256' | 'sha512' = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
}

// proves: unsigned tokens (alg none), principal or delegation, are refused
attack('alg none is refused', TOKEN_FACES, fx, async (face, f) => {
  const claims = await aliceClaims(f);
  await refused(
    f,
    face.name,
    `${b64({ alg: 'none', typ: 'tenantry-principal+jwt' })}.${b64(claims)}.`,
    'TENANTRY_ERR_TOKEN_INVALID',
  );
  await refused(
    f,
    face.name,
    `${b64({ alg: 'none', typ: 'tenantry-delegation+jwt' })}.${b64(claims)}.`,
    'TENANTRY_ERR_TOKEN_INVALID',
  );
});

// proves: algorithm confusion fails even with the real key: RS256 "verified" with the HMAC key, HS512, a forged key id
attack('algorithm confusion is refused, even signed with the HMAC key', TOKEN_FACES, fx, async (face, f) => {
  const key = Buffer.from(await f.tenantry.credentials.get('tenantry', 'principal-key'), 'base64');
  const claims = { ...(await aliceClaims(f)), permission: 'admin' };
  for (const header of [
    { alg: 'RS256', typ: 'tenantry-principal+jwt' },
    { alg: 'ES256', typ: 'tenantry-principal+jwt' },
    { alg: 'HS256', typ: 'tenantry-delegation+jwt', kid: '../../principal-key' },
  ]) {
    await refused(f, face.name, hmac(header, claims, key), 'TENANTRY_ERR_TOKEN_INVALID');
  }
  await refused(
    f,
    face.name,
    hmac({ alg: 'HS512', typ: 'tenantry-principal+jwt' }, claims, key, 'sha512'),
    'TENANTRY_ERR_TOKEN_INVALID',
  );
});

// proves: changing a principal's claims (its tenant, its permission) breaks its signature
attack('a tampered principal is refused', TOKEN_FACES, fx, async (face, f) => {
  const token = await f.tenantry.login('alice@HomeDepot', 'demo');
  const [header, , signature] = token.split('.');
  const claims = { ...decodeJwt(token), tenant: { id: f.id('Lowes'), name: 'Lowes' }, permission: 'admin' };
  await refused(f, face.name, `${header}.${b64(claims)}.${signature}`, 'TENANTRY_ERR_TOKEN_INVALID');
  expect(await present(f, face.name, token)).toBe('ok:HomeDepot');
});

// proves: an expired principal is refused with TOKEN_EXPIRED
attack('an expired principal is refused', TOKEN_FACES, fx, async (face, f) => {
  const claims = await aliceClaims(f);
  const expired = await f.tenantry.principals.seal({
    user: String(claims.sub),
    domain: String(claims.domain),
    tenant: { id: f.id('HomeDepot'), name: 'HomeDepot' },
    permission: 'write',
    issuedAt: new Date(Date.now() - 7_200_000),
    expiresAt: new Date(Date.now() - 3_600_000),
  });
  await refused(f, face.name, expired, 'TENANTRY_ERR_TOKEN_EXPIRED');
});

// proves: a delegation token issued for another audience is refused with TOKEN_AUDIENCE
attack('a delegation token for another audience is refused', TOKEN_FACES, fx, async (face, f) => {
  const { token } = await f.tenantry.tokens.issue({
    user: 'alice@HomeDepot',
    service: 'reports',
    audience: 'other-api',
  });
  await refused(f, face.name, token, 'TENANTRY_ERR_TOKEN_AUDIENCE');
});

// proves: a revoked delegation token replayed is refused, and a gateway session opened with it ends
attack('a revoked token id cannot be replayed', TOKEN_FACES, fx, async (face, f) => {
  const { token, id } = await f.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'reports' });
  expect(await present(f, face.name, token)).toBe('ok:HomeDepot');
  const open = face.name === 'gateway' ? await f.gw.connect('token', token) : undefined;
  await f.tenantry.tokens.revoke(id);
  await refused(f, face.name, token, 'TENANTRY_ERR_TOKEN_REVOKED');
  if (open) {
    await new Promise((r) => setTimeout(r, 1_200));
    await expect(open.query('SELECT 1')).rejects.toThrow(/TOKEN_REVOKED|terminated|ended/);
  }
});

// proves: a principal outlives neither its user nor the user's move to another tenant
attack('a removed user’s principal is refused', TOKEN_FACES, fx, async (face, f) => {
  const user = `temp-${face.name}@HomeDepot`;
  await f.tenantry.users.add(user, { password: 'temporary-pass', permission: 'write' });
  const token = await f.tenantry.login(user, 'temporary-pass');
  expect(await present(f, face.name, token)).toBe('ok:HomeDepot');
  await f.tenantry.users.remove(user);
  await expect
    .poll(() => present(f, face.name, token), { timeout: 3_000 })
    .toBe(face.name === 'http' ? '401:TENANTRY_ERR_AUTH' : 'TENANTRY_ERR_AUTH');
});

// proves: over HTTP, a tenant's token never acts for another tenant, however x-tenant-id names it
attack('HTTP: x-tenant-id must name the token’s own tenant', ['http'], fx, async (_face, f) => {
  const alice = await f.tenantry.login('alice@HomeDepot', 'demo');
  const lowes = await f.tenantry.resolveTenant('Lowes');
  for (const header of [
    'Lowes',
    'lowes',
    ' LOWES ',
    String(lowes.id),
    lowes.uuid,
    lowes.uuid.toUpperCase(),
    'HomeDepot, Lowes',
    'NoSuchTenant',
  ]) {
    expect(await present(f, 'http', alice, header), header).toBe('403:TENANTRY_ERR_FORBIDDEN');
  }
  const { token } = await f.tenantry.tokens.issue({ user: 'fred@Lowes', service: 'svc' });
  expect(await present(f, 'http', token, 'HomeDepot')).toBe('403:TENANTRY_ERR_FORBIDDEN');
  expect(await present(f, 'http', token, 'Lowes')).toBe('ok:Lowes');
  expect(await present(f, 'http', alice, 'homedepot')).toBe('ok:HomeDepot');
});

// proves: at the gateway, a token logs in only as its own user (user@domain+token must match)
attack('gateway: a token cannot log in as another user', ['gateway'], fx, async (_face, f) => {
  const fred = await f.tenantry.login('fred@Lowes', 'demo');
  const attemptLogin = (user: string) =>
    f.gw.connect(user, fred).then(
      () => 'ok',
      (e: unknown) => String((e as Error).message),
    );
  expect(await attemptLogin('alice@HomeDepot+token')).toMatch(/TENANTRY_ERR_AUTH/);
  expect(await attemptLogin('fred@Lowes+token')).toBe('ok');
});
