import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, as, httpFixture, type HttpFixture } from './helpers.js';

let fx: HttpFixture;

beforeAll(async () => {
  fx = await httpFixture('http_admin', { topN: 2 });
});
afterAll(async () => {
  await fx.close();
});

async function admin(
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  payload?: unknown,
  token = ADMIN,
) {
  const response = await fx.app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${token}` },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return {
    status: response.statusCode,
    body: response.body ? (response.json<unknown>() as Record<string, unknown>) : {},
  };
}

describe('admin API', () => {
  it('needs the admin token: 401 without it or with a tenant’s token', async () => {
    expect((await fx.app.inject({ method: 'GET', url: '/v1/admin/tenants' })).statusCode).toBe(401);
    expect((await admin('GET', '/v1/admin/tenants', undefined, 'wrong-token-wrong-token')).status).toBe(401);
    const alice = await fx.tenantry.login('alice@HomeDepot', 'demo');
    const tenantToken = await admin('GET', '/v1/admin/tenants', undefined, alice);
    expect(tenantToken).toMatchObject({ status: 401, body: { code: 'TENANTRY_ERR_UNAUTHENTICATED' } });
  });

  it('manages the tenant lifecycle', async () => {
    const created = await admin('POST', '/v1/admin/tenants', { name: 'Acme', isolation: 'schema' });
    expect(created).toMatchObject({
      status: 201,
      body: { name: 'Acme', isolation: 'schema', state: 'active' },
    });
    expect(created.body).not.toHaveProperty('role');
    expect((await admin('POST', '/v1/admin/tenants', { name: 'acme' })).status).toBe(409);
    expect((await admin('POST', '/v1/admin/tenants', { name: 'Bad', isolation: 'cloud' })).status).toBe(400);
    const list = await admin('GET', '/v1/admin/tenants');
    expect((list.body as unknown as { name: string }[]).map((t) => t.name)).toContain('Acme');
    for (const [action, state] of [
      ['disable', 'disabled'],
      ['enable', 'active'],
      ['lock', 'locked'],
      ['unlock', 'active'],
    ] as const) {
      expect(await admin('POST', `/v1/admin/tenants/Acme/${action}`)).toMatchObject({
        status: 200,
        body: { state },
      });
    }
    expect((await admin('GET', `/v1/admin/tenants/${String(created.body.id)}`)).body).toMatchObject({
      name: 'Acme',
    });
    expect((await admin('GET', '/v1/admin/tenants/Nope')).status).toBe(404);
    expect(await admin('DELETE', '/v1/admin/tenants/Acme')).toMatchObject({
      status: 409,
      body: { code: 'TENANTRY_ERR_FORCE_REQUIRED' },
    });
    expect(await admin('DELETE', '/v1/admin/tenants/Acme?force=true')).toMatchObject({ status: 200 });
    expect((await admin('GET', '/v1/admin/tenants/Acme')).status).toBe(404);
  });

  it('manages domains, users and tokens', async () => {
    await admin('POST', '/v1/admin/tenants', { name: 'Globex' });
    const domain = await admin('POST', '/v1/admin/domains', { name: 'Globex', tenant: 'Globex' });
    expect(domain).toMatchObject({ status: 201, body: { name: 'Globex', tenant: { name: 'Globex' } } });
    expect(typeof domain.body.accessCode).toBe('string');
    const user = await admin('POST', '/v1/admin/users', {
      user: 'hank@Globex',
      password: 'a-long-password',
      permission: 'read',
    });
    expect(user).toMatchObject({ status: 201, body: { permission: 'read' } });
    expect(JSON.stringify(user.body)).not.toContain('a-long-password');
    expect((await admin('GET', '/v1/admin/users?domain=Globex')).body).toHaveLength(1);
    expect(
      (await admin('PUT', '/v1/admin/users/hank@Globex/password', { password: 'another-password' })).status,
    ).toBe(204);
    await expect(fx.tenantry.login('hank@Globex', 'another-password')).resolves.toBeTypeOf('string');
    const token = await admin('POST', '/v1/admin/tokens/delegate', {
      user: 'hank@Globex',
      service: 'batch',
      ttlSeconds: 600,
    });
    expect(token.status).toBe(201);
    const use = () =>
      fx.app.inject({
        method: 'GET',
        url: '/v1/internal/users',
        headers: as(String(token.body.token), 'Globex'),
      });
    expect((await use()).statusCode).toBe(200);
    expect((await admin('POST', `/v1/admin/tokens/${String(token.body.id)}/revoke`)).status).toBe(204);
    expect((await use()).statusCode).toBe(401);
    expect((await admin('DELETE', '/v1/admin/users/hank@Globex')).status).toBe(204);
    expect((await admin('DELETE', '/v1/admin/users/hank@Globex')).status).toBe(404);
    expect((await admin('POST', '/v1/admin/users', { user: 'x@Globex', permission: 'root' })).status).toBe(
      400,
    );
  });

  it('lists groups and servers, and shows pools and activity', async () => {
    const groups = await admin('GET', '/v1/admin/groups');
    expect((groups.body as unknown as { name: string }[]).map((g) => g.name)).toContain('LowesItm');
    const servers = await admin('GET', '/v1/admin/servers');
    expect((servers.body as unknown as { name: string }[]).map((s) => s.name)).toContain('main');
    const stats = await admin('GET', '/v1/admin/stats');
    expect(stats.body).toHaveProperty('pools.servers');
  });
});

describe('metrics, health, docs, logs', () => {
  it('exports per-tenant metrics with a bounded tenant label', async () => {
    for (const [user, tenant] of [
      ['alice@HomeDepot', 'HomeDepot'],
      ['fred@Lowes', 'Lowes'],
      ['bob@LowesBos', 'LowesBos'],
    ] as const) {
      const token = await fx.tenantry.login(user, 'demo');
      const times = tenant === 'HomeDepot' ? 3 : tenant === 'Lowes' ? 2 : 1;
      for (let i = 0; i < times; i++)
        await fx.app.inject({ method: 'GET', url: '/v1/internal/users', headers: as(token, tenant) });
    }
    // Tenant names and activity are the operator's: the admin token, and nothing else, reads them.
    expect((await fx.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    const tenantToken = await fx.tenantry.login('alice@HomeDepot', 'demo');
    expect(
      (await fx.app.inject({ method: 'GET', url: '/metrics', headers: as(tenantToken, 'HomeDepot') }))
        .statusCode,
    ).toBe(401);
    const metrics = (
      await fx.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${ADMIN}` } })
    ).body;
    expect(metrics).toMatch(/tenantry_tenant_queries_total\{tenant="HomeDepot"\} \d+/);
    expect(metrics).toMatch(/tenantry_tenant_queries_total\{tenant="_other"\} \d+/);
    expect(metrics).not.toMatch(/tenant="LowesBos"/);
    expect(metrics).toMatch(/tenantry_tenant_query_duration_seconds_bucket\{tenant="HomeDepot",le="\+Inf"\}/);
    expect(metrics).toMatch(/tenantry_connections\{server="main",state="in_use"\}/);
    expect(metrics).toMatch(/tenantry_tenant_pool_checkouts_total\{tenant="/);
    expect(metrics).toMatch(/tenantry_pool_waiters \d+/);
  });

  it('answers /healthz, /readyz, /docs and a JSON 404', async () => {
    expect((await fx.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await fx.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const openapi = (await fx.app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, unknown>;
    }>();
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/v1/internal/users', '/v1/sql', '/v1/admin/tenants']),
    );
    expect((await fx.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
    const missing = await fx.app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'TENANTRY_ERR_ROUTE_NOT_FOUND' });
  });

  it('logs one line per request with id, tenant, route, status and duration — and no secrets', async () => {
    const token = await fx.tenantry.login('alice@HomeDepot', 'demo');
    fx.logs.length = 0;
    await fx.app.inject({ method: 'GET', url: '/v1/internal/users', headers: as(token, 'HomeDepot') });
    await fx.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { user: 'alice@HomeDepot', password: 'demo' },
    });
    const lines = fx.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      tenant: 'HomeDepot',
      route: '/v1/internal/users',
      status: 200,
      method: 'GET',
    });
    expect(lines[0]).toHaveProperty('reqId');
    expect(lines[0]).toHaveProperty('ms');
    const all = fx.logs.join('\n');
    expect(all).not.toContain(token);
    expect(all).not.toContain('demo"');
    expect(all).not.toContain(ADMIN);
  });
});
