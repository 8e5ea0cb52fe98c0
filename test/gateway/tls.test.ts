import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/index.js';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';

const run = promisify(execFile);
let fx: GatewayFixture;
let secure: Gateway;
let open: Gateway;

/** A non-loopback IPv4 address of this machine, if it has one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

beforeAll(async () => {
  fx = await gatewayFixture('gw_tls');
  const dir = mkdtempSync(join(tmpdir(), 'tenantry-tls-'));
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]);
  secure = await fx.tenantry.startGateway({
    port: 0,
    host: '0.0.0.0',
    tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
  });
  open = await fx.tenantry.startGateway({ port: 0, host: '0.0.0.0' });
}, 60_000);
afterAll(async () => {
  await secure.close(1_000);
  await open.close(1_000);
  await fx.close();
});

function url(gateway: Gateway, user: string, password: string, host = '127.0.0.1'): string {
  return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${gateway.port}/tenantry`;
}

async function tenantOf(config: pg.ClientConfig): Promise<string | undefined> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    const { rows } = await client.query<{ t: string; ssl: boolean }>('select tenantry.tenant_name() as t');
    return rows[0]?.t;
  } finally {
    await client.end();
  }
}

describe('gateway TLS', () => {
  it('answers SSLRequest with TLS when a certificate is configured (node-postgres and psql)', async () => {
    expect(
      await tenantOf({
        connectionString: url(secure, 'alice@HomeDepot', 'demo'),
        ssl: { rejectUnauthorized: false },
      }),
    ).toBe('HomeDepot');
    const { stdout } = await run('psql', [
      `${url(secure, 'alice@HomeDepot', 'demo')}?sslmode=require`,
      '-Atc',
      'select tenantry.tenant_name()',
    ]);
    expect(stdout.trim()).toBe('HomeDepot');
  });

  it("answers 'N' without a certificate: sslmode=require fails, prefer falls back", async () => {
    await expect(
      tenantOf({
        connectionString: url(open, 'alice@HomeDepot', 'demo'),
        ssl: { rejectUnauthorized: false },
      }),
    ).rejects.toThrow(/does not support SSL/);
    const { stdout } = await run('psql', [
      `${url(open, 'alice@HomeDepot', 'demo')}?sslmode=prefer`,
      '-Atc',
      'select 1',
    ]);
    expect(stdout.trim()).toBe('1');
  });

  it.runIf(external !== undefined)('token logins need TLS or loopback', async () => {
    const { token } = await fx.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    const host = external as string;
    await expect(tenantOf({ connectionString: url(open, 'token', token, host) })).rejects.toMatchObject({
      code: '28000',
      message: expect.stringMatching(/TENANTRY_ERR_INSECURE_TRANSPORT/) as unknown,
    });
    expect(
      await tenantOf({
        connectionString: url(secure, 'token', token, host),
        ssl: { rejectUnauthorized: false },
      }),
    ).toBe('HomeDepot');
    // SCRAM needs no TLS: the password never crosses the wire.
    expect(await tenantOf({ connectionString: url(open, 'alice@HomeDepot', 'demo', host) })).toBe(
      'HomeDepot',
    );
  });
});
