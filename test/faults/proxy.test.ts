import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHttp, type Gateway } from '../../src/index.js';
import {
  TENANTS,
  eventually,
  expectConsistentCatalog,
  expectOwn,
  failure,
  faultFixture,
  isFaultError,
  readNotes,
  type FaultFixture,
} from './helpers.js';

// tenantry → proxy → PostgreSQL, with connect timeout 1.5 s, checkout timeout 2 s and a
// client-side query timeout of 3 s (helpers.ts). Generous margin for a loaded 2-core CI box.
const MARGIN = 4_000;
const ADMIN = 'fault-admin-token-0123456789';

let f: FaultFixture;
let gateway: Gateway;
let app: FastifyInstance;
const tokens = new Map<string, string>();

beforeAll(async () => {
  f = await faultFixture('faults_proxy');
  gateway = await f.tenantry.startGateway({ port: 0 });
  ({ app } = await buildHttp(f.tenantry, { logger: pino({ level: 'silent' }), adminToken: ADMIN }));
  await app.ready();
  for (const { name } of TENANTS) tokens.set(name, await f.tenantry.login(`u@${name}`, 'pw'));
});

afterAll(async () => {
  await app?.close();
  await gateway?.close(1_000);
  await f?.close();
});

/** A node-postgres client logged in through the gateway as `u@<tenant>`. */
async function gatewayClient(tenant: string): Promise<pg.Client & { errors: unknown[] }> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: gateway.port,
    database: 'tenantry',
    user: `u@${tenant}`,
    password: 'pw',
    connectionTimeoutMillis: 20_000,
  });
  const errors: unknown[] = [];
  client.on('error', (error) => errors.push(error));
  await client.connect();
  return Object.assign(client, { errors });
}

async function viaGateway(tenant: string): Promise<{ owner: string }[]> {
  const client = await gatewayClient(tenant);
  try {
    return (await client.query<{ owner: string }>('SELECT owner FROM note ORDER BY id')).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function viaHttp(tenant: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await app.inject({
    method: 'POST',
    url: '/v1/sql',
    headers: { authorization: `Bearer ${tokens.get(tenant) ?? ''}`, 'x-tenant-id': tenant },
    payload: { sql: 'SELECT owner FROM note ORDER BY id' },
  });
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}

/** Every face answers every tenant with exactly its own rows. */
async function allFacesHealthy(): Promise<boolean> {
  for (const { name } of TENANTS) {
    expectOwn(name, await readNotes(f.tenantry, name));
    expectOwn(name, await viaGateway(name));
    const http = await viaHttp(name);
    if (http.status !== 200) return false;
    expectOwn(name, http.body.rows as { owner: string }[]);
  }
  return true;
}

/** A failed HTTP answer is a 5xx JSON error with a tenantry code, never a wrong row. */
function expectHttpFault(answer: { status: number; body: Record<string, unknown> }, tenant: string): void {
  if (answer.status === 200) {
    expectOwn(tenant, answer.body.rows as { owner: string }[]);
    return;
  }
  expect(answer.status).toBeGreaterThanOrEqual(500);
  expect(answer.body.code).toMatch(/^TENANTRY_ERR_(CONNECTION_LOST|DATABASE_UNREACHABLE|POOL_TIMEOUT)$/);
  expect(answer.body.message).toEqual(expect.any(String));
}

describe('faults between tenantry and PostgreSQL', () => {
  it('latency: every face still answers every tenant with its own rows', async () => {
    f.proxy.latency(40);
    try {
      expect(await allFacesHealthy()).toBe(true);
      // concurrent mixed traffic: each answer is the asking tenant's
      await Promise.all(
        TENANTS.flatMap(({ name }) => [
          readNotes(f.tenantry, name).then((rows) => expectOwn(name, rows)),
          viaGateway(name).then((rows) => expectOwn(name, rows)),
        ]),
      );
    } finally {
      f.proxy.pass();
    }
  });

  it('reset: connections cut with RST fail fast with connection errors; every face recovers', async () => {
    const held = await gatewayClient('Lowes');
    await held.query('BEGIN');
    await held.query('SELECT 1');
    f.proxy.reset();
    f.proxy.killAll('reset');
    // library: a read is retried once on a fresh connection, which the proxy also refuses
    for (const { name } of TENANTS) {
      const { error, ms } = await failure(() => readNotes(f.tenantry, name));
      expect(isFaultError(error), String(error)).toBe(true);
      expect(ms).toBeLessThan(2_000 + MARGIN);
    }
    // gateway: the client in a transaction learns its server connection is gone
    const lost = await failure(() => held.query('SELECT owner FROM note'));
    const told = [lost.error, ...held.errors].map((e) => `${(e as { code?: string }).code} ${String(e)}`);
    expect(told.join('\n')).toMatch(/08006 .*server connection was lost/);
    // gateway: a new transaction gets an ErrorResponse with a connection SQLSTATE
    // (the login itself may already fail: then with 08006 and a tenantry code)
    const login = Date.now();
    const client = await gatewayClient('HomeDepot').catch((error: unknown) => error);
    if (client instanceof pg.Client) {
      const { error, ms } = await failure(() => client.query('SELECT owner FROM note'));
      expect((error as { code?: string }).code).toMatch(/^(08006|53300)$/);
      expect(String(error)).toMatch(/TENANTRY_ERR_(DATABASE_UNREACHABLE|CONNECTION_LOST|POOL_TIMEOUT)/);
      expect(ms).toBeLessThan(2_000 + MARGIN);
      await client.end().catch(() => undefined);
    } else {
      expect((client as { code?: string }).code).toBe('08006');
      expect(String(client)).toMatch(/TENANTRY_ERR_CONNECTION_LOST/);
      expect(Date.now() - login).toBeLessThan(2_000 + MARGIN);
    }
    // HTTP: 5xx JSON with a code
    expectHttpFault(await viaHttp('Menards'), 'Menards');
    f.proxy.pass();
    await eventually(allFacesHealthy, 15_000, 'recovery after the resets');
    await held.end().catch(() => undefined);
  });

  it('blackhole: checkouts fail within the connect timeout, statements in flight within the query timeout; every face recovers', async () => {
    const held = await gatewayClient('HomeDepot');
    f.proxy.blackhole();
    // in flight on connections that were fine a moment ago
    const started = Date.now();
    const results = await Promise.allSettled([
      ...TENANTS.map(({ name }) => readNotes(f.tenantry, name)),
      held.query('SELECT owner FROM note'),
      ...TENANTS.map(({ name }) => viaHttp(name)),
    ]);
    const elapsed = Date.now() - started;
    // query timeout 3 s, then one retry of a read: at most two timeouts, plus margin
    expect(elapsed).toBeLessThan(2 * 3_000 + MARGIN);
    for (const [i, result] of results.entries()) {
      if (i < TENANTS.length) {
        const tenant = TENANTS[i]?.name ?? '';
        if (result.status === 'fulfilled') expectOwn(tenant, result.value as { owner: string }[]);
        else expect(isFaultError(result.reason), String(result.reason)).toBe(true);
      } else if (i === TENANTS.length) {
        expect(result.status).toBe('rejected');
        expect(String((result as PromiseRejectedResult).reason)).toMatch(/CONNECTION_LOST|lost|terminat/);
      } else {
        const tenant = TENANTS[i - TENANTS.length - 1]?.name ?? '';
        expect(result.status).toBe('fulfilled');
        expectHttpFault(
          (result as PromiseFulfilledResult<{ status: number; body: Record<string, unknown> }>).value,
          tenant,
        );
      }
    }
    // a fresh checkout cannot connect: DATABASE_UNREACHABLE (or POOL_TIMEOUT) within the timeouts
    const fresh = await failure(() => readNotes(f.tenantry, 'AceHardware'));
    expect(isFaultError(fresh.error), String(fresh.error)).toBe(true);
    expect(fresh.ms).toBeLessThan(2 * 3_000 + MARGIN);
    // The path heals: the connections that went silent are answered with RST from now on.
    f.proxy.pass();
    f.proxy.killAll('reset');
    await eventually(allFacesHealthy, 20_000, 'recovery after the blackhole');
    await held.end().catch(() => undefined);
    expect(f.tenantry.poolStats().servers[0]?.total ?? 0).toBeLessThanOrEqual(12);
  }, 60_000);

  it('slow close: backends terminated under a slow-closing path fail with 57P01 and are replaced', async () => {
    f.proxy.slowClose(1_500);
    const load = TENANTS.map(async ({ name }) => {
      for (let i = 0; i < 15; i++) {
        try {
          expectOwn(name, await readNotes(f.tenantry, name));
        } catch (error) {
          expect(isFaultError(error), String(error)).toBe(true);
        }
      }
    });
    await new Promise((r) => setTimeout(r, 100));
    await f.tenantry.operator.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'tenantry%' AND pid <> pg_backend_pid() AND application_name <> 'tenantry-operator'",
    );
    await Promise.all(load);
    f.proxy.pass();
    await eventually(allFacesHealthy, 15_000, 'recovery after the terminations');
  });

  it('afterwards: the catalog is consistent and the pool budget is intact', async () => {
    await expectConsistentCatalog(f.directUrl);
    const main = f.tenantry.poolStats().servers.find((s) => s.server === 'main');
    expect(main?.total ?? 0).toBeLessThanOrEqual(main?.budget ?? 0);
    expect(main?.inUse).toBe(0);
  });
});
