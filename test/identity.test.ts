import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type ErrorCode,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

let url: string;
let masterKey: string;
let tenantry: Tenantry;

/** Resolves to the TenantryError code `promise` rejects with (fails when it resolves). */
async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isTenantryError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  expect(await codeOf(promise)).toBe(`TENANTRY_ERR_${code}`);
}

function part(token: string, index: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
}

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

beforeAll(async () => {
  url = await createTestDatabase('identity');
  masterKey = generateMasterKey();
  tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  for (const [name, customers] of [
    ['HomeDepot', ['Albert Hall', 'Candace Jones']],
    ['Lowes', ['Fred Smith', 'Joan Adlon', 'George Holmes']],
  ] as const) {
    await tenantry.tenants.create({ name });
    await tenantry.withTenant(name, async (db) => {
      for (const [i, customer] of customers.entries())
        await db.query('INSERT INTO customer (cust_num, name) VALUES ($1, $2)', [i + 1, customer]);
    });
    await tenantry.domains.add(name, { tenant: name });
  }
  await tenantry.users.add('alice@HomeDepot', { password: 'alice-secret' });
  await tenantry.users.add('fred@Lowes', { password: 'fred-secret', permission: 'read' });
});
afterAll(async () => {
  await tenantry?.close();
});

describe('domains', () => {
  it('lists the blank domain of the default tenant and the added ones', async () => {
    const domains = await tenantry.domains.list();
    expect(domains.map((d) => [d.name, d.tenant.name, d.authSystem])).toEqual([
      ['', 'Default', 'builtin'],
      ['HomeDepot', 'HomeDepot', 'builtin'],
      ['Lowes', 'Lowes', 'builtin'],
    ]);
    expect((await tenantry.domains.show('homedepot')).tenant.id).toBeGreaterThan(0);
  });

  it('keeps a random access code sealed in the catalog', async () => {
    const added = await tenantry.domains.add('LowesNY', { tenant: 'Lowes' });
    expect(added.accessCode).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(await tenantry.domains.accessCode('lowesny')).toBe(added.accessCode);
    const { rows } = await tenantry.operator.query<{ sealed: string }>(
      "SELECT sealed FROM tenantry.credential WHERE owner = 'domain:lowesny' AND field = 'access-code'",
    );
    expect(rows[0]?.sealed).toMatch(/^v1\./);
    expect(rows[0]?.sealed).not.toContain(added.accessCode);
    await tenantry.domains.remove('LOWESNY');
    const after = await tenantry.operator.query(
      "SELECT 1 FROM tenantry.credential WHERE owner = 'domain:lowesny'",
    );
    expect(after.rowCount).toBe(0);
  });

  it('refuses duplicates, bad names, unknown tenants and removing the blank domain', async () => {
    await rejectsWith(tenantry.domains.add('homedepot', { tenant: 'HomeDepot' }), 'DOMAIN_EXISTS');
    await rejectsWith(tenantry.domains.add('bad name', { tenant: 'HomeDepot' }), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.domains.add('', { tenant: 'HomeDepot' }), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.domains.add('Acme', { tenant: 'Acme' }), 'TENANT_NOT_FOUND');
    await rejectsWith(
      tenantry.domains.add('Acme', { tenant: 'HomeDepot', authSystem: 'Not Valid' }),
      'INVALID_ARGUMENT',
    );
    await rejectsWith(tenantry.domains.remove(''), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.domains.remove('nowhere'), 'DOMAIN_NOT_FOUND');
  });
});

describe('users', () => {
  it('adds, lists, re-keys and removes users; passwords are stored as scrypt hashes', async () => {
    const bob = await tenantry.users.add('Bob@homedepot', { password: 'pw1', permission: 'admin' });
    expect(bob).toMatchObject({
      name: 'Bob',
      domain: 'HomeDepot',
      ref: 'Bob@HomeDepot',
      permission: 'admin',
    });
    expect((await tenantry.users.list({ domain: 'HomeDepot' })).map((u) => u.ref)).toEqual([
      'alice@HomeDepot',
      'Bob@HomeDepot',
    ]);
    const { rows } = await tenantry.operator.query<{ password_hash: string }>(
      "SELECT password_hash FROM tenantry.app_user WHERE name = 'Bob'",
    );
    expect(rows[0]?.password_hash).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    await tenantry.users.setPassword('bob@HomeDepot', 'pw2');
    await rejectsWith(tenantry.login('bob@HomeDepot', 'pw1'), 'AUTH');
    expect(typeof (await tenantry.login('BOB@homedepot', 'pw2'))).toBe('string');
    await tenantry.users.remove('bob@HomeDepot');
    await rejectsWith(tenantry.users.remove('bob@HomeDepot'), 'USER_NOT_FOUND');
  });

  it('puts a user without @domain in the blank domain of the default tenant', async () => {
    const root = await tenantry.users.add('root', { password: 'root-pw' });
    expect(root).toMatchObject({ domain: '', ref: 'root', tenant: { id: 0 }, permission: 'write' });
    const principal = await tenantry.principals.open(await tenantry.login('root', 'root-pw'));
    expect(principal.tenant).toEqual({ id: 0, name: 'Default' });
    await tenantry.users.remove('root');
  });

  it('validates names, permissions, passwords and domains with clear codes', async () => {
    await rejectsWith(tenantry.users.add('alice@HomeDepot', { password: 'x' }), 'USER_EXISTS');
    await rejectsWith(tenantry.users.add('ALICE@homedepot', { password: 'x' }), 'USER_EXISTS');
    await rejectsWith(tenantry.users.add('a@b@c', { password: 'x' }), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.users.add('@HomeDepot', { password: 'x' }), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.users.add('carl@HomeDepot'), 'INVALID_ARGUMENT');
    await rejectsWith(tenantry.users.add('carl@HomeDepot', { password: '' }), 'INVALID_ARGUMENT');
    await rejectsWith(
      tenantry.users.add('carl@HomeDepot', { password: 'x', permission: 'owner' as 'admin' }),
      'INVALID_ARGUMENT',
    );
    await rejectsWith(tenantry.users.add('carl@Nowhere', { password: 'x' }), 'DOMAIN_NOT_FOUND');
    await rejectsWith(tenantry.users.list({ domain: 'Nowhere' }), 'DOMAIN_NOT_FOUND');
    await rejectsWith(tenantry.users.setPassword('carl@HomeDepot', 'x'), 'USER_NOT_FOUND');
  });
});

describe('login and principals', () => {
  it('a login answers a signed principal with user, domain, tenant, permission and a 1 h expiry', async () => {
    const token = await tenantry.login('alice@homedepot', 'alice-secret');
    expect(part(token, 0)).toEqual({ alg: 'HS256', typ: 'tenantry-principal+jwt' });
    const principal = await tenantry.principals.open(token);
    const home = tenantry.catalog.get('HomeDepot');
    expect(principal).toMatchObject({
      user: 'alice',
      domain: 'HomeDepot',
      tenant: { id: home?.id, name: 'HomeDepot' },
      permission: 'write',
    });
    expect(principal.expiresAt.getTime() - principal.issuedAt.getTime()).toBe(3_600_000);
    expect(principal.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a wrong password, an unknown user and an unknown domain fail alike', async () => {
    const failures = await Promise.all(
      [
        tenantry.login('alice@HomeDepot', 'wrong'),
        tenantry.login('mallory@HomeDepot', 'alice-secret'),
        tenantry.login('alice@Nowhere', 'alice-secret'),
        tenantry.login('not a user', 'x'),
      ].map((p) =>
        p.then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    for (const error of failures) {
      expect(isTenantryError(error, 'AUTH')).toBe(true);
      expect((error as Error).message).toBe('Authentication failed: unknown user or wrong password.');
    }
  });

  it('a disabled or locked tenant refuses logins of its users', async () => {
    await tenantry.tenants.disable('HomeDepot');
    try {
      await rejectsWith(tenantry.login('alice@HomeDepot', 'alice-secret'), 'TENANT_DISABLED');
      await rejectsWith(tenantry.login('alice@HomeDepot', 'wrong'), 'AUTH');
      await tenantry.tenants.lock('HomeDepot');
      await rejectsWith(tenantry.login('alice@HomeDepot', 'alice-secret'), 'TENANT_LOCKED');
    } finally {
      await tenantry.tenants.enable('HomeDepot');
    }
  });

  it('a tampered, unsigned (alg none) or expired principal is refused', async () => {
    const token = await tenantry.login('fred@Lowes', 'fred-secret');
    const [header = '', payload = '', signature = ''] = token.split('.');
    const claims = part(token, 1);
    const tampered = `${header}.${encode({ ...claims, permission: 'admin' })}.${signature}`;
    await rejectsWith(tenantry.principals.open(tampered), 'TOKEN_INVALID');
    const unsigned = `${encode({ alg: 'none', typ: 'tenantry-principal+jwt' })}.${payload}.`;
    await rejectsWith(tenantry.principals.open(unsigned), 'TOKEN_INVALID');
    await rejectsWith(
      tenantry.withPrincipal(unsigned, async () => 1),
      'TOKEN_INVALID',
    );
    await rejectsWith(tenantry.principals.open('not.a.token'), 'TOKEN_INVALID');
    const lowes = tenantry.catalog.get('Lowes');
    const expired = await tenantry.principals.seal({
      user: 'fred',
      domain: 'Lowes',
      tenant: { id: lowes?.id ?? 0, name: 'Lowes' },
      permission: 'read',
      issuedAt: new Date(Date.now() - 7_200_000),
      expiresAt: new Date(Date.now() - 3_600_000),
    });
    await rejectsWith(tenantry.principals.open(expired), 'TOKEN_EXPIRED');
    await rejectsWith(
      tenantry.withPrincipal(expired, async () => 1),
      'TOKEN_EXPIRED',
    );
  });

  it('another instance on the same database with the same master key accepts the principal', async () => {
    const token = await tenantry.login('fred@Lowes', 'fred-secret');
    const other = await createTenantry({ databaseUrl: url, masterKey });
    try {
      const names = await other.withPrincipal(token, async (db, principal) => {
        expect(principal.permission).toBe('read');
        return (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY cust_num')).rows;
      });
      expect(names.map((r) => r.name)).toEqual(['Fred Smith', 'Joan Adlon', 'George Holmes']);
      expect(await other.principals.open(await other.login('alice@HomeDepot', 'alice-secret'))).toMatchObject(
        {
          user: 'alice',
        },
      );
    } finally {
      await other.close();
    }
  });

  it('without a master key, logins and principals throw MASTER_KEY_INVALID', async () => {
    const token = await tenantry.login('fred@Lowes', 'fred-secret');
    const keyless = await createTenantry({ databaseUrl: url });
    try {
      await rejectsWith(keyless.login('fred@Lowes', 'fred-secret'), 'MASTER_KEY_INVALID');
      await rejectsWith(
        keyless.withPrincipal(token, async () => 1),
        'MASTER_KEY_INVALID',
      );
    } finally {
      await keyless.close();
    }
  });

  it('withPrincipal alternating HomeDepot and Lowes 200 times never reads the other tenant’s rows', async () => {
    const alice = await tenantry.login('alice@HomeDepot', 'alice-secret');
    const fred = await tenantry.login('fred@Lowes', 'fred-secret');
    const expected = {
      HomeDepot: ['Albert Hall', 'Candace Jones'],
      Lowes: ['Fred Smith', 'Joan Adlon', 'George Holmes'],
    };
    for (let i = 0; i < 200; i++) {
      const token = i % 2 === 0 ? alice : fred;
      const seen = await tenantry.withPrincipal(token, async (db, principal) => ({
        tenant: principal.tenant.name,
        names: (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY cust_num')).rows.map(
          (r) => r.name,
        ),
      }));
      expect(seen.tenant).toBe(i % 2 === 0 ? 'HomeDepot' : 'Lowes');
      expect(seen.names).toEqual(expected[seen.tenant as keyof typeof expected]);
    }
  });

  it('a removed user’s principal is refused, also by another instance', async () => {
    await tenantry.users.add('temp@Lowes', { password: 'temp-pw' });
    const token = await tenantry.login('temp@Lowes', 'temp-pw');
    expect(await tenantry.withPrincipal(token, async (_db, p) => p.user)).toBe('temp');
    const other = await createTenantry({ databaseUrl: url, masterKey });
    try {
      await tenantry.users.remove('temp@Lowes');
      await rejectsWith(
        tenantry.withPrincipal(token, async () => 1),
        'AUTH',
      );
      await rejectsWith(
        other.withPrincipal(token, async () => 1),
        'AUTH',
      );
    } finally {
      await other.close();
    }
  });

  it('a domain can use an authenticator registered in TypeScript', async () => {
    await tenantry.domains.add('LowesBos', { tenant: 'Lowes', authSystem: 'ldap' });
    await tenantry.users.add('bob@LowesBos', { permission: 'write' });
    const asked: string[] = [];
    tenantry.authenticators.register('ldap', ({ user, domain, password }) => {
      asked.push(`${user}@${domain}`);
      return password === 'directory-pw';
    });
    const principal = await tenantry.principals.open(await tenantry.login('bob@LowesBos', 'directory-pw'));
    expect(principal.tenant.name).toBe('Lowes');
    await rejectsWith(tenantry.login('bob@LowesBos', 'wrong'), 'AUTH');
    // An empty password never reaches the authenticator (an empty LDAP bind is anonymous).
    await rejectsWith(tenantry.login('bob@LowesBos', ''), 'INVALID_ARGUMENT');
    expect(asked).toEqual(['bob@LowesBos', 'bob@LowesBos']);
    expect(() => tenantry.authenticators.register('builtin', () => true)).toThrow(/builtin/);
    const other = await createTenantry({ databaseUrl: url, masterKey });
    try {
      // Not registered in this process: the same AUTH as a wrong password (no user enumeration).
      await rejectsWith(other.login('bob@LowesBos', 'directory-pw'), 'AUTH');
      await rejectsWith(other.login('nobody@LowesBos', 'directory-pw'), 'AUTH');
    } finally {
      await other.close();
    }
  });

  it('a read-only user reads its tenant but PostgreSQL refuses its writes', async () => {
    const token = await tenantry.login('fred@Lowes', 'fred-secret');
    const names = await tenantry.withPrincipal(token, async (db) =>
      (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
    );
    expect(names.length).toBeGreaterThan(0);
    const write = await tenantry
      .withPrincipal(token, (db) => db.query("UPDATE customer SET name = 'x'"))
      .catch((e: unknown) => e);
    expect((write as { code?: string }).code).toBe('25006');
    const escape = await tenantry
      .withPrincipal(token, (db) =>
        db.query("SET transaction_read_only = off; UPDATE customer SET name = 'x'"),
      )
      .catch((e: unknown) => e);
    expect((escape as { code?: string }).code).toMatch(/^(25001|25006)$/);
    const alice = await tenantry.login('alice@HomeDepot', 'alice-secret');
    await tenantry.withPrincipal(alice, (db) =>
      db.query('UPDATE customer SET name = name WHERE cust_num = 1'),
    );
  });
});
