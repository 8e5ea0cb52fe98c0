import { execFile } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';
import { ChildProcess } from '../runtime/child.js';

const run = promisify(execFile);
let fx: GatewayFixture;

beforeAll(async () => {
  fx = await gatewayFixture('gw_auth');
});
afterAll(async () => {
  await fx.close();
});

/** Connecting fails: answers the server's error (SQLSTATE and message). */
async function refused(connectionString: string, password?: string): Promise<pg.DatabaseError> {
  const client = new pg.Client({ connectionString, ...(password === undefined ? {} : { password }) });
  client.on('error', () => undefined);
  const error = await client.connect().then(
    () => undefined,
    (e: unknown) => e,
  );
  await client.end().catch(() => undefined);
  expect(error).toBeInstanceOf(pg.DatabaseError);
  return error as pg.DatabaseError;
}

async function names(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('select name from customer order by name');
  return rows.map((r) => r.name);
}

/** Starts SCRAM-SHA-256 as `user` on a gateway and answers the salt of the server-first message. */
async function scramSalt(port: number, user: string): Promise<string> {
  const socket = tcpConnect({ host: '127.0.0.1', port });
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const pairs = Buffer.from(`user\0${user}\0database\0tenantry\0\0`);
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(8 + pairs.length, 0);
    startup.writeInt32BE(196608, 4);
    socket.write(Buffer.concat([startup, pairs]));
    let buffered = Buffer.alloc(0);
    const message = async (): Promise<{ type: string; body: Buffer }> => {
      for (;;) {
        if (buffered.length >= 5) {
          const length = buffered.readInt32BE(1);
          if (buffered.length >= 1 + length) {
            const out = {
              type: String.fromCharCode(buffered[0] ?? 0),
              body: buffered.subarray(5, 1 + length),
            };
            buffered = buffered.subarray(1 + length);
            return out;
          }
        }
        const chunk = await new Promise<Buffer>((resolve, reject) =>
          socket.once('data', resolve).once('error', reject),
        );
        buffered = Buffer.concat([buffered, chunk]);
      }
    };
    const sasl = await message();
    expect(sasl.type).toBe('R');
    expect(sasl.body.readInt32BE(0)).toBe(10); // AuthenticationSASL
    const clientFirst = Buffer.from('n,,n=,r=abcdefghijklmnopqrstuvwx');
    const mechanism = Buffer.from('SCRAM-SHA-256\0');
    const initial = Buffer.alloc(4 + mechanism.length + 4);
    initial.writeInt32BE(4 + mechanism.length + 4 + clientFirst.length, 0);
    mechanism.copy(initial, 4);
    initial.writeInt32BE(clientFirst.length, 4 + mechanism.length);
    socket.write(Buffer.concat([Buffer.from('p'), initial, clientFirst]));
    const next = await message();
    expect(next.body.readInt32BE(0)).toBe(11); // AuthenticationSASLContinue
    const salt = /(?:^|,)s=([^,]+)/.exec(next.body.subarray(4).toString())?.[1];
    if (!salt) throw new Error(`no salt in ${next.body.subarray(4).toString()}`);
    return salt;
  } finally {
    socket.destroy();
  }
}

describe('gateway logins (SCRAM-SHA-256 as user@domain)', () => {
  it('an unknown user gets the same salt from every process, as a real user does (no enumeration by salt)', async () => {
    const other = new ChildProcess(
      `const t = await lib.createTenantry({ databaseUrl: process.env.URL });
       const g = await t.startGateway({ port: 0 });
       say({ port: g.port });
       await new Promise(() => {});`,
      { URL: fx.url },
    );
    try {
      const { port } = await other.next<{ port: number }>();
      for (const user of ['alice@HomeDepot', 'mallory@HomeDepot']) {
        const here = await scramSalt(fx.gateway.port, user);
        expect(await scramSalt(fx.gateway.port, user)).toBe(here);
        expect(await scramSalt(port, user), user).toBe(here);
      }
      expect(await scramSalt(fx.gateway.port, 'mallory@HomeDepot')).not.toBe(
        await scramSalt(fx.gateway.port, 'eve@HomeDepot'),
      );
    } finally {
      await other.kill();
    }
  });

  it('psql as alice@HomeDepot prints HomeDepot’s customers only', async () => {
    const { stdout } = await run(
      'psql',
      [fx.connectionString('alice@HomeDepot'), '-Atc', 'select name from customer order by 1'],
      {
        env: { ...process.env, PGSSLMODE: 'disable' },
      },
    );
    expect(stdout.trim().split('\n')).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
  });

  it('each user reaches its own tenant and nothing else', async () => {
    const alice = await fx.connect('alice@HomeDepot');
    const fred = await fx.connect('fred@Lowes');
    expect(await names(alice)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    expect(await names(fred)).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
    const who = await alice.query<{ t: string; s: string }>(
      'select tenantry.tenant_name() as t, session_user as s',
    );
    expect(who.rows[0]?.t).toBe('HomeDepot');
    // The login role is derived from the tenant's uuid: neither its name nor its id shows.
    expect(who.rows[0]?.s).toMatch(/^tenantry_t_[0-9a-f]{32}/);
    // The tenant column does not exist for a tenant session.
    await expect(alice.query('select tenant_id from customer')).rejects.toMatchObject({ code: '42703' });
  });

  it('a wrong password and an unknown user fail alike with 28P01 (no enumeration)', async () => {
    const wrong = await refused(fx.connectionString('alice@HomeDepot', 'nope'));
    const unknown = await refused(fx.connectionString('mallory@HomeDepot', 'nope'));
    const noDomain = await refused(fx.connectionString('alice@NoSuchDomain', 'demo'));
    for (const error of [wrong, unknown, noDomain]) {
      expect(error.code).toBe('28P01');
      expect(error.severity).toBe('FATAL');
      expect(error.message).toBe(wrong.message);
    }
    expect(wrong.message).toMatch(/^TENANTRY_ERR_AUTH:/);
  });

  it('a disabled or locked tenant is refused with 28000, once the password was right', async () => {
    await fx.tenantry.tenants.disable('Lowes');
    try {
      const disabled = await refused(fx.connectionString('fred@Lowes'));
      expect(disabled.code).toBe('28000');
      expect(disabled.message).toMatch(/TENANTRY_ERR_TENANT_DISABLED/);
      const stillWrong = await refused(fx.connectionString('fred@Lowes', 'nope'));
      expect(stillWrong.code).toBe('28P01');
    } finally {
      await fx.tenantry.tenants.enable('Lowes');
    }
    await fx.tenantry.tenants.lock('Lowes');
    try {
      const locked = await refused(fx.connectionString('fred@Lowes'));
      expect(locked.code).toBe('28000');
      expect(locked.message).toMatch(/TENANTRY_ERR_TENANT_LOCKED/);
    } finally {
      await fx.tenantry.tenants.unlock('Lowes');
    }
  });

  it('another database name is 3D000; startup parameters outside the allowlist are 42501, bad values 22023', async () => {
    const database = await refused(fx.connectionString('alice@HomeDepot').replace('/tenantry', '/postgres'));
    expect(database.code).toBe('3D000');
    for (const option of [
      '-c search_path=public',
      '-c role=postgres',
      '-c session_authorization=postgres',
      '-c tenantry.tenant=Lowes',
    ]) {
      const error = await refused(
        `${fx.connectionString('alice@HomeDepot')}?options=${encodeURIComponent(option)}`,
      );
      expect(error.code, option).toBe('42501');
    }
    // Allowed parameters are checked by PostgreSQL at login, as a server checks its own.
    for (const option of ['-c DateStyle=bogus', '-c TimeZone=Nowhere/Special']) {
      const error = await refused(
        `${fx.connectionString('alice@HomeDepot')}?options=${encodeURIComponent(option)}`,
      );
      expect(error.code, option).toBe('22023');
      expect(error.message, option).toMatch(/TENANTRY_ERR_INVALID_ARGUMENT: .*invalid value for parameter/);
    }
    const reported = new Map<string, string>();
    const client = new pg.Client({
      connectionString: fx.connectionString('alice@HomeDepot'),
      options: '-c DateStyle=german -c TimeZone=Europe/Paris',
    });
    client.connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) =>
      reported.set(m.parameterName, m.parameterValue),
    );
    await client.connect();
    try {
      expect(reported.get('DateStyle')).toBe('German, DMY');
      expect((await client.query('show DateStyle')).rows).toEqual([{ DateStyle: 'German, DMY' }]);
      expect((await client.query('show TimeZone')).rows).toEqual([{ TimeZone: 'Europe/Paris' }]);
    } finally {
      await client.end();
    }
  });

  it('a super-tenant user picks its effective tenant at connect time; it applies to every transaction', async () => {
    const root = await fx.connect('root@ops', 'demo', {
      options: '-c tenantry.tenant=HomeDepot',
    });
    for (let i = 0; i < 3; i++) {
      expect(await names(root)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
      const { rows } = await root.query<{ t: string }>('select tenantry.effective_tenant_name() as t');
      expect(rows[0]?.t).toBe('HomeDepot');
    }
    // Without the option a super tenant has no data of its own (its segments are never allocated).
    const plain = await fx.connect('root@ops');
    await expect(names(plain)).rejects.toThrow(/TENANTRY_ERR_NOT_ALLOCATED/);
    // The same backend (one pool per role) then serves the plain session without the effective tenant.
    expect(await names(root)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
  });
});

describe('gateway token logins (cleartext password carrying a principal or delegation token)', () => {
  it('alice@HomeDepot+token with a delegation token, and token with a sealed principal', async () => {
    const { token } = await fx.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'reports' });
    const byToken = await fx.connect('alice@HomeDepot+token', token);
    expect(await names(byToken)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    const principal = await fx.tenantry.login('fred@Lowes', 'demo');
    const byPrincipal = await fx.connect('token', principal);
    expect(await names(byPrincipal)).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
  });

  it('a token presented for another user, a tampered or a revoked token is refused', async () => {
    const { token, id } = await fx.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'reports' });
    expect((await refused(fx.connectionString('fred@Lowes+token', token))).code).toBe('28P01');
    expect((await refused(fx.connectionString('token', `${token.slice(0, -2)}xx`))).code).toBe('28000');
    await fx.tenantry.tokens.revoke(id);
    const revoked = await refused(fx.connectionString('token', token));
    expect(revoked.code).toBe('28000');
    expect(revoked.message).toMatch(/TENANTRY_ERR_TOKEN_REVOKED/);
  });

  it('revoking a token, removing a user or disabling a tenant ends open sessions within about a second', async () => {
    const { token, id } = await fx.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'reports' });
    const session = await fx.connect('token', token);
    expect(await names(session)).toHaveLength(3);
    await fx.tenantry.tokens.revoke(id);
    await expect(pollUntilRejected(session)).resolves.toMatchObject({ code: '28000' });

    await fx.tenantry.users.add('temp@LowesBos', { password: 'temporary-pass' });
    const temp = await fx.connect('temp@LowesBos', 'temporary-pass');
    expect(await names(temp)).toEqual(['Bill Otis']);
    await fx.tenantry.users.remove('temp@LowesBos');
    await expect(pollUntilRejected(temp)).resolves.toMatchObject({ code: '28000' });

    const bob = await fx.connect('bob@LowesBos');
    await fx.tenantry.tenants.disable('LowesBos');
    try {
      await expect(pollUntilRejected(bob)).resolves.toMatchObject({ code: '28000' });
    } finally {
      await fx.tenantry.tenants.enable('LowesBos');
    }
  });
});

describe('long-lived token sessions', () => {
  it('renew themselves past the token’s expiry until the token is revoked', async () => {
    const { token, id } = await fx.tenantry.tokens.issue({
      user: 'alice@HomeDepot',
      service: 'etl',
      ttlSeconds: 1,
    });
    const session = await fx.connect('alice@HomeDepot+token', token);
    await new Promise((r) => setTimeout(r, 2_200));
    expect(await names(session)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    // A new login with the expired token is refused…
    expect((await refused(fx.connectionString('token', token))).message).toMatch(
      /TENANTRY_ERR_TOKEN_EXPIRED/,
    );
    // …and revoking it ends the renewed session.
    await fx.tenantry.tokens.revoke(id);
    await expect(pollUntilRejected(session)).resolves.toMatchObject({ code: '28000' });
  });
});

/** Queries every 100 ms until the session is refused (at most 3 s); answers the error. */
async function pollUntilRejected(client: pg.Client): Promise<unknown> {
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const error = await client.query('select 1').then(
      () => undefined,
      (e: unknown) => e,
    );
    if (error) return error;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the session was never refused');
}
