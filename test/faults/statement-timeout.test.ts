import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantCommand } from '../../src/cli/commands/tenant.js';
import { buildHttp, type Gateway } from '../../src/index.js';
import { expectConsistentCatalog, failure, faultFixture, type FaultFixture } from './helpers.js';

const ADMIN = 'limits-admin-token-0123456789';
const LIMIT_MS = 1_000;
/** Far beyond the limit: a statement still running then was not cancelled. */
const SLOW = 'SELECT pg_sleep(4)';
const MARGIN = 2_500;

let f: FaultFixture;
let gateway: Gateway;
let app: FastifyInstance;

beforeAll(async () => {
  f = await faultFixture('faults_limits');
  gateway = await f.tenantry.startGateway({ port: 0 });
  ({ app } = await buildHttp(f.tenantry, { logger: pino({ level: 'silent' }), adminToken: ADMIN }));
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await gateway?.close(1_000);
  await f?.close();
});

async function gatewayClient(tenant: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port,
    database: 'tenantry',
    user: `u@${tenant}`,
    password: 'pw',
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Runs `tenantry tenant …` (the CLI's own command) in-process; 0 on success, 1 on an error. */
async function cli(...args: string[]): Promise<number> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = () => true;
  try {
    await tenantCommand(() => ({ databaseUrl: f.url })).parseAsync(args.slice(1), { from: 'user' });
    return 0;
  } catch {
    return 1;
  } finally {
    process.stdout.write = write;
  }
}

/** A slow statement of `tenant` on each face: library (app role, own role), gateway, HTTP. */
function slowOnEveryFace(tenant: string): Record<string, () => Promise<unknown>> {
  return {
    app: () => f.tenantry.withTenant(tenant, (db) => db.query(SLOW)),
    appTx: () => f.tenantry.withTenant(tenant, (db) => db.transaction((tx) => tx.query(SLOW))),
    own: () => f.tenantry.withTenant(tenant, (db) => db.query(SLOW), { identity: 'tenant' }),
    gateway: async () => {
      const client = await gatewayClient(tenant);
      try {
        return await client.query(SLOW);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    http: async () => {
      const token = await f.tenantry.login(`u@${tenant}`, 'pw');
      const response = await app.inject({
        method: 'POST',
        url: '/v1/sql',
        headers: { authorization: `Bearer ${token}`, 'x-tenant-id': tenant },
        payload: { sql: SLOW },
      });
      if (response.statusCode !== 200) throw Object.assign(new Error(response.body), response.json());
      return response.json();
    },
  };
}

describe('per-tenant statement_timeout', () => {
  it('is set by the operator (CLI) and cancels a slow statement of that tenant on every face with 57014', async () => {
    for (const tenant of ['HomeDepot', 'Menards', 'AceHardware']) {
      expect(await cli('tenant', 'limits', tenant, '--statement-timeout', `${LIMIT_MS / 1000}s`)).toBe(0);
      expect((await f.tenantry.tenants.show(tenant)).statementTimeoutMs).toBe(LIMIT_MS);
    }
    for (const tenant of ['HomeDepot', 'Menards', 'AceHardware']) {
      const faces = Object.entries(slowOnEveryFace(tenant));
      const outcomes = await Promise.all(faces.map(([, run]) => failure(run)));
      for (const [i, { error, ms }] of outcomes.entries()) {
        const face = `${tenant} via ${faces[i]?.[0] ?? '?'}`;
        const code = (error as { code?: string }).code;
        expect(code === '57014' || code === 'SQLSTATE_57014', `${face}: ${String(error)}`).toBe(true);
        expect(ms, face).toBeLessThan(LIMIT_MS + MARGIN);
      }
    }
  });

  it('holds for a login role created after it, which also follows the tenant state', async () => {
    await f.tenantry.tenants.create({ name: 'Sears' });
    await f.tenantry.tenants.setLimits('Sears', { statementTimeoutMs: LIMIT_MS });
    const sears = await f.tenantry.tenants.ensureLoginRole('Sears');
    await f.tenantry.tenants.create({ name: 'Kmart' });
    await f.tenantry.tenants.disable('Kmart');
    const kmart = await f.tenantry.tenants.ensureLoginRole('Kmart');
    const { rows } = await f.tenantry.operator.query<{
      name: string;
      login: boolean;
      config: string[] | null;
    }>(
      'SELECT rolname AS name, rolcanlogin AS login, rolconfig AS config FROM pg_roles WHERE rolname = ANY ($1) ORDER BY rolname = $2 DESC',
      [[sears.role, kmart.role], sears.role],
    );
    expect(rows[0]).toMatchObject({ name: sears.role, login: true });
    expect(rows[0]?.config).toContain(`statement_timeout=${LIMIT_MS}`);
    expect(rows[1]).toMatchObject({ name: kmart.role, login: false });
    // A database tenant's read role, created at its first read-only session after the limit.
    await f.tenantry.withTenant('AceHardware', (db) => db.query('SELECT 1'), {
      identity: 'tenant',
      permission: 'read',
    });
    const { rows: read } = await f.tenantry.operator.query<{ config: string[] | null }>(
      `SELECT p.rolconfig AS config FROM tenantry.tenant_role r JOIN pg_roles p ON p.rolname = r.role_name
       WHERE r.tenant_id = (SELECT id FROM tenantry.tenant WHERE name = 'AceHardware') AND r.permission = 'read'`,
    );
    expect(read[0]?.config).toContain(`statement_timeout=${LIMIT_MS}`);
  });

  it("other tenants' statements are not limited by it", async () => {
    const started = Date.now();
    const [viaLibrary, viaGateway] = await Promise.all([
      f.tenantry.withTenant('Lowes', (db) => db.query<{ ok: string }>("SELECT pg_sleep(1.5), 'ok' AS ok")),
      (async () => {
        const client = await gatewayClient('Lowes');
        try {
          return await client.query<{ ok: string }>("SELECT pg_sleep(1.5), 'ok' AS ok");
        } finally {
          await client.end();
        }
      })(),
    ]);
    expect(viaLibrary.rows[0]?.ok).toBe('ok');
    expect(viaGateway.rows[0]?.ok).toBe('ok');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('survives a pooled connection reset: a session that lifted it leaves the next one limited', async () => {
    const first = await gatewayClient('Menards');
    await first.query('SET statement_timeout = 0');
    await first.query('SELECT 1');
    await first.end();
    const second = await gatewayClient('Menards');
    try {
      const { rows } = await second.query<{ t: string }>("SELECT current_setting('statement_timeout') AS t");
      expect(rows[0]?.t).toBe('1s');
      await expect(second.query(SLOW)).rejects.toMatchObject({ code: '57014' });
    } finally {
      await second.end();
    }
  });

  it('is changed and removed through the admin HTTP API, and bad values are refused', async () => {
    const put = (tenant: string, body: unknown) =>
      app.inject({
        method: 'PUT',
        url: `/v1/admin/tenants/${tenant}/limits`,
        headers: { authorization: `Bearer ${ADMIN}` },
        payload: body as Record<string, unknown>,
      });
    expect((await put('HomeDepot', { statementTimeoutMs: -5 })).statusCode).toBe(400);
    await expect(
      f.tenantry.tenants.setLimits('HomeDepot', { statementTimeoutMs: 1.5 }),
    ).rejects.toMatchObject({
      code: 'TENANTRY_ERR_INVALID_ARGUMENT',
    });
    expect(await cli('tenant', 'limits', 'HomeDepot', '--statement-timeout', 'soon')).toBe(1);
    const cleared = await put('HomeDepot', { statementTimeoutMs: null });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json()).toEqual({ tenant: 'HomeDepot', statementTimeoutMs: null });
    const { rows } = await f.tenantry.withTenant(
      'HomeDepot',
      (db) => db.query<{ ok: string }>("SELECT pg_sleep(1.5), 'ok' AS ok"),
      { identity: 'tenant' },
    );
    expect(rows[0]?.ok).toBe('ok');
    await expectConsistentCatalog(f.directUrl);
  });
});
