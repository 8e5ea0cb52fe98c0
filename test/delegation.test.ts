import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELEGATION_TYPE, DelegationTokens } from '../src/identity/index.js';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type ErrorCode,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

let tenantry: Tenantry;
let url: string;
let masterKey: string;

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isTenantryError(error) ? error.code : String(error);
  }
  return 'resolved';
}
const expectCode = async (promise: Promise<unknown>, expected: ErrorCode) =>
  expect(await code(promise)).toBe(`TENANTRY_ERR_${expected}`);

const names = (token: string) =>
  tenantry.withPrincipal(token, async (db) =>
    (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
  );

beforeAll(async () => {
  url = await createTestDatabase('delegation');
  masterKey = generateMasterKey();
  tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  for (const [name, customer] of [
    ['HomeDepot', 'Albert Hall'],
    ['Lowes', 'Fred Smith'],
  ] as const) {
    await tenantry.tenants.create({ name });
    await tenantry.withTenant(name, (db) =>
      db.query('INSERT INTO customer (cust_num, name) VALUES (1, $1)', [customer]),
    );
    await tenantry.domains.add(name, { tenant: name });
  }
  await tenantry.users.add('alice@HomeDepot', { password: 'pw-alice' });
  await tenantry.users.add('fred@Lowes', { password: 'pw-fred', permission: 'read' });
});
afterAll(async () => {
  await tenantry?.close();
});

describe('delegation tokens (seed 000)', () => {
  it('a service obtains a token for a user; tenantry maps it to that user and tenant only', async () => {
    const issued = await tenantry.tokens.issue({
      user: 'alice@HomeDepot',
      service: 'catalog-service',
      ttlSeconds: 600,
    });
    const d = await tenantry.tokens.verify(issued.token);
    expect(d).toMatchObject({
      user: 'alice',
      domain: 'HomeDepot',
      service: 'catalog-service',
      tenant: { name: 'HomeDepot' },
    });
    expect(await names(issued.token)).toEqual(['Albert Hall']);
    const fred = await tenantry.tokens.issue({ user: 'fred@Lowes', service: 'catalog-service' });
    expect(await names(fred.token)).toEqual(['Fred Smith']);
    const write = await tenantry
      .withPrincipal(fred.token, (db) => db.query("UPDATE customer SET name = 'x'"))
      .catch((e: unknown) => e);
    expect((write as { code?: string }).code).toBe('25006');
  });

  it('another process with the same keys accepts it; a revocation holds everywhere within a second', async () => {
    const issued = await tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    const other = await createTenantry({ databaseUrl: url, masterKey });
    try {
      expect(await other.tokens.verify(issued.token)).toMatchObject({ user: 'alice' });
      await tenantry.tokens.revoke(issued.id);
      // The revoking process refuses it at once; another one as soon as the NOTIFY arrives.
      await expectCode(tenantry.tokens.verify(issued.token), 'TOKEN_REVOKED');
      const deadline = Date.now() + 1_000;
      while (Date.now() < deadline) {
        const accepted = await other.tokens.verify(issued.token).then(
          () => true,
          () => false,
        );
        if (!accepted) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await expectCode(other.tokens.verify(issued.token), 'TOKEN_REVOKED');
      await expectCode(
        tenantry.withPrincipal(issued.token, async () => 1),
        'TOKEN_REVOKED',
      );
    } finally {
      await other.close();
    }
  });

  it('rejects expired, wrong-audience, wrong-type, alg:none, tampered and unknown-key tokens, each with its code', async () => {
    const audience = await tenantry.tokens.issue({
      user: 'alice@HomeDepot',
      service: 'svc',
      audience: 'billing',
    });
    await expectCode(tenantry.tokens.verify(audience.token), 'TOKEN_AUDIENCE');
    expect((await tenantry.tokens.verify(audience.token, { audience: 'billing' })).user).toBe('alice');
    const good = (await tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc', ttlSeconds: 1 }))
      .token;
    const [h, p, sig] = good.split('.') as [string, string, string];
    await expectCode(tenantry.tokens.verify(`${h}.${p}.${sig.slice(0, -2)}AA`), 'TOKEN_INVALID');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const none = Buffer.from(JSON.stringify({ ...header, alg: 'none' })).toString('base64url');
    await expectCode(tenantry.tokens.verify(`${none}.${p}.`), 'TOKEN_INVALID');
    const wrongType = Buffer.from(JSON.stringify({ ...header, typ: 'JWT' })).toString('base64url');
    await expectCode(tenantry.tokens.verify(`${wrongType}.${p}.${sig}`), 'TOKEN_INVALID');
    const foreign = await new SignJWT({ act: { sub: 'x' } })
      .setProtectedHeader({ alg: 'HS256', typ: 'tenantry-delegation+jwt', kid: '0123456789abcdef' })
      .setSubject('alice')
      .setAudience('tenantry')
      .setIssuer('tenantry')
      .setExpirationTime('1h')
      .setJti('5f0c4a1e-0000-4000-8000-000000000000')
      .sign(new Uint8Array(32));
    await expectCode(tenantry.tokens.verify(foreign), 'TOKEN_INVALID');
    await new Promise((r) => setTimeout(r, 2100));
    await expectCode(tenantry.tokens.verify(good), 'TOKEN_EXPIRED');
  });

  it('keys rotate: new tokens use the new key and older tokens still verify', async () => {
    const before = await tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    const kid = await tenantry.tokens.rotateKey();
    const after = await tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    const kidOf = (token: string) =>
      (JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
    expect(kidOf(after.token)).toBe(kid);
    expect(kidOf(before.token)).not.toBe(kid);
    expect((await tenantry.tokens.verify(before.token)).user).toBe('alice');
  });

  it('validates input and refuses tokens of removed users', async () => {
    await expectCode(tenantry.tokens.issue({ user: 'nobody@HomeDepot', service: 'svc' }), 'USER_NOT_FOUND');
    await expectCode(
      tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc', ttlSeconds: 0 }),
      'INVALID_ARGUMENT',
    );
    await expectCode(tenantry.tokens.revoke('not-a-uuid'), 'INVALID_ARGUMENT');
    await tenantry.users.add('temp@HomeDepot', { password: 'pw' });
    const temp = await tenantry.tokens.issue({ user: 'temp@HomeDepot', service: 'svc' });
    await tenantry.users.remove('temp@HomeDepot');
    await expectCode(tenantry.tokens.verify(temp.token), 'AUTH');
  });

  it('a revocation typed in upper case holds too', async () => {
    const issued = await tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    await tenantry.tokens.revoke(issued.id.toUpperCase());
    await expectCode(tenantry.tokens.verify(issued.token), 'TOKEN_REVOKED');
    await expectCode(
      tenantry.withPrincipal(issued.token, async () => 1),
      'TOKEN_REVOKED',
    );
  });

  it('a token stays with its tenant: a domain name reused by another tenant does not carry it over', async () => {
    await tenantry.tenants.create({ name: 'Acme' });
    await tenantry.tenants.create({ name: 'Rival' });
    await tenantry.withTenant('Rival', (db) =>
      db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Rival secret')"),
    );
    await tenantry.domains.add('acme', { tenant: 'Acme' });
    await tenantry.users.add('bob@acme', { password: 'pw-bob' });
    const issued = await tenantry.tokens.issue({ user: 'bob@acme', service: 'svc' });
    expect(await names(issued.token)).toEqual([]);
    // Acme's domain goes; Rival takes the same domain name and user name.
    await tenantry.users.remove('bob@acme');
    await tenantry.domains.remove('acme');
    await tenantry.domains.add('acme', { tenant: 'Rival' });
    await tenantry.users.add('bob@acme', { password: 'pw-bob-2' });
    await expectCode(tenantry.tokens.verify(issued.token), 'AUTH');
    await expectCode(names(issued.token), 'AUTH');
    // A fresh token for the new bob is Rival's.
    const fresh = await tenantry.tokens.issue({ user: 'bob@acme', service: 'svc' });
    expect(await names(fresh.token)).toEqual(['Rival secret']);
  });
});

describe('DelegationTokens.looksLike (remembers the answer per token header)', () => {
  const sign = (typ: string) =>
    new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'HS256', typ }).sign(new Uint8Array(32).fill(7));

  it('answers by the header only, the same on every call', async () => {
    const delegation = await sign(DELEGATION_TYPE);
    const other = await sign('JWT');
    for (let round = 0; round < 3; round++) {
      expect(DelegationTokens.looksLike(delegation)).toBe(true);
      // same header, another body: still a delegation token by its header
      expect(DelegationTokens.looksLike(`${delegation.split('.')[0]}.e30.sig`)).toBe(true);
      expect(DelegationTokens.looksLike(other)).toBe(false);
      expect(DelegationTokens.looksLike('not-a-token')).toBe(false);
      expect(DelegationTokens.looksLike(`${'A'.repeat(600)}.b.c`)).toBe(false);
      expect(DelegationTokens.looksLike('')).toBe(false);
    }
  });
});
