import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, as, httpFixture, type HttpFixture } from './helpers.js';

let fx: HttpFixture;
let alice: string;
let fred: string;

beforeAll(async () => {
  fx = await httpFixture('http_data', { rowLimit: 50, statementTimeoutMs: 500 });
  alice = await fx.tenantry.login('alice@HomeDepot', 'demo');
  fred = await fx.tenantry.login('fred@Lowes', 'demo');
});
afterAll(async () => {
  await fx.close();
});

async function call(method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: unknown) {
  const response = await fx.app.inject({
    method,
    url,
    headers,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: response.statusCode, body: response.json<Record<string, unknown> & { code?: string }>() };
}

describe('POST /v1/auth/login', () => {
  it('answers a sealed principal for the right password, one 401 for wrong user or password', async () => {
    const ok = await call('POST', '/v1/auth/login', {}, { user: 'alice@HomeDepot', password: 'demo' });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ tenant: 'HomeDepot' });
    expect(typeof ok.body.token).toBe('string');
    const wrong = await call('POST', '/v1/auth/login', {}, { user: 'alice@HomeDepot', password: 'nope' });
    const unknown = await call('POST', '/v1/auth/login', {}, { user: 'zed@HomeDepot', password: 'nope' });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect(wrong.body).toEqual(unknown.body);
    expect(wrong.body.code).toBe('TENANTRY_ERR_AUTH');
  });

  it('400 naming the field for a bad body, 400 for bad JSON', async () => {
    const missing = await call('POST', '/v1/auth/login', {}, { user: 'alice@HomeDepot' });
    expect(missing).toMatchObject({ status: 400, body: { code: 'TENANTRY_ERR_INVALID_ARGUMENT' } });
    expect(String(missing.body.message)).toMatch(/password/);
    const badJson = await fx.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"user":',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json()).toMatchObject({ code: 'TENANTRY_ERR_INVALID_ARGUMENT' });
  });
});

describe('/v1/internal/users (seed 002): checks in an order that reveals no tenant', () => {
  it('serves the token’s tenant, named by id, uuid or name', async () => {
    const home = fx.tenantry.catalog.get('HomeDepot');
    for (const ref of ['HomeDepot', 'homedepot', String(home?.id), String(home?.uuid)]) {
      const { status, body } = await call('GET', '/v1/internal/users', as(alice, ref));
      expect(status, ref).toBe(200);
      expect((body as unknown as { name: string }[]).map((u) => u.name).sort()).toEqual([
        'Dana Orange',
        'Hank Depot',
      ]);
    }
  });

  it('401 without or with a bad token, 403 for another tenant (existing or not), 404 only for the operator', async () => {
    expect((await call('GET', '/v1/internal/users', { 'x-tenant-id': 'HomeDepot' })).status).toBe(401);
    expect((await call('GET', '/v1/internal/users', as('garbage', 'HomeDepot'))).status).toBe(401);
    expect(
      (await call('GET', '/v1/internal/users', as(`${alice.slice(0, -3)}abc`, 'HomeDepot'))).status,
    ).toBe(401);
    const other = await call('GET', '/v1/internal/users', as(alice, 'Lowes'));
    const missing = await call('GET', '/v1/internal/users', as(alice, 'NoSuchTenant'));
    expect([other.status, missing.status]).toEqual([403, 403]);
    expect(other.body).toEqual(missing.body);
    const operatorMissing = await call('GET', '/v1/internal/users', as(ADMIN, 'NoSuchTenant'));
    expect(operatorMissing).toMatchObject({ status: 404, body: { code: 'TENANTRY_ERR_TENANT_NOT_FOUND' } });
    const operator = await call('GET', '/v1/internal/users', as(ADMIN, 'Lowes'));
    expect(operator.status).toBe(200);
    expect((operator.body as unknown as { name: string }[]).map((u) => u.name)).toEqual(['Lou Blue']);
    expect((await call('GET', '/v1/internal/users', as(alice))).status).toBe(400);
    // Authentication comes first, also for SQL the second wall refuses.
    const anonymous = await call('POST', '/v1/sql', { 'x-tenant-id': 'HomeDepot' }, { sql: 'listen x' });
    expect(anonymous.status).toBe(401);
  });

  it('a disabled tenant is 403 TENANTRY_ERR_TENANT_DISABLED', async () => {
    await fx.tenantry.tenants.disable('Lowes');
    try {
      const { status, body } = await call('GET', '/v1/internal/users', as(fred, 'Lowes'));
      expect(status).toBe(403);
      expect(body.code).toBe('TENANTRY_ERR_TENANT_DISABLED');
    } finally {
      await fx.tenantry.tenants.enable('Lowes');
    }
  });

  it('POST adds a row only its tenant sees; a bad body is 400 naming the field', async () => {
    const created = await call('POST', '/v1/internal/users', as(fred, 'Lowes'), { name: 'Lana New' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Lana New' });
    const lowes = await call('GET', '/v1/internal/users', as(fred, 'Lowes'));
    expect((lowes.body as unknown as { name: string }[]).map((u) => u.name)).toContain('Lana New');
    const home = await call('GET', '/v1/internal/users', as(alice, 'HomeDepot'));
    expect((home.body as unknown as { name: string }[]).map((u) => u.name)).not.toContain('Lana New');
    for (const [body, field] of [
      [{}, 'name'],
      [{ name: 5 }, 'name'],
      [{ name: 'x', admin: true }, 'admin'],
    ] as const) {
      const bad = await call('POST', '/v1/internal/users', as(fred, 'Lowes'), body);
      expect(bad.status).toBe(400);
      expect(String(bad.body.message)).toContain(field);
    }
  });

  it('a revoked delegation token replayed is 401 TENANTRY_ERR_TOKEN_REVOKED', async () => {
    const { token, id } = await fx.tenantry.tokens.issue({ user: 'alice@HomeDepot', service: 'reports' });
    expect((await call('GET', '/v1/internal/users', as(token, 'HomeDepot'))).status).toBe(200);
    await fx.tenantry.tokens.revoke(id);
    const replay = await call('GET', '/v1/internal/users', as(token, 'HomeDepot'));
    expect(replay).toMatchObject({ status: 401, body: { code: 'TENANTRY_ERR_TOKEN_REVOKED' } });
  });

  it('concurrent requests for 100 tenants never mix rows', async () => {
    const tokens: { tenant: string; token: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const tenant = `Conc${i}`;
      await fx.tenantry.tenants.create({ name: tenant });
      await fx.tenantry.withTenant(tenant, (db) =>
        db.query('INSERT INTO users (name) VALUES ($1), ($2)', [`${tenant}-a`, `${tenant}-b`]),
      );
      await fx.tenantry.domains.add(tenant, { tenant });
      await fx.tenantry.users.add(`svc@${tenant}`, { permission: 'read', password: 'not-used-here' });
      const { token } = await fx.tenantry.tokens.issue({ user: `svc@${tenant}`, service: 'load' });
      tokens.push({ tenant, token });
    }
    const requests = Array.from(
      { length: 400 },
      (_, n) => tokens[(n * 37) % tokens.length] as { tenant: string; token: string },
    );
    const answers = await Promise.all(
      requests.map(async ({ tenant, token }) => ({
        tenant,
        ...(await call('GET', '/v1/internal/users', as(token, tenant))),
      })),
    );
    for (const { tenant, status, body } of answers) {
      expect(status, JSON.stringify(body)).toBe(200);
      expect((body as unknown as { name: string }[]).map((u) => u.name).sort()).toEqual([
        `${tenant}-a`,
        `${tenant}-b`,
      ]);
    }
  }, 120_000);
});

describe('POST /v1/sql and GET /v1/tables/:name', () => {
  it('runs the tenant’s SQL under its own role, with limits', async () => {
    const rows = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), {
      sql: 'select name, current_user as who from customer order by name',
    });
    expect(rows.status).toBe(200);
    const list = rows.body.rows as { name: string; who: string }[];
    expect(list.map((r) => r.name)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    expect(list[0]?.who).toMatch(/^tenantry_t_/);
    const params = await call('POST', '/v1/sql', as(fred, 'Lowes'), {
      sql: 'select count(*)::int as n from customer where state = $1',
      params: ['NC'],
    });
    expect(params.body.rows).toEqual([{ n: 2 }]);
    const many = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), {
      sql: 'select g from generate_series(1, 500) g',
    });
    expect(many.body).toMatchObject({ truncated: true });
    expect(many.body.rows).toHaveLength(50);
    // A trailing semicolon or a WITH query is read through the cursor too: only limit + 1 rows
    // are ever computed (row 1000 would divide by zero), so the server never buffers it all.
    for (const sql of [
      'select case when g < 1000 then g else g / (g - g) end as g from generate_series(1, 2000) g;',
      'with n as (select g from generate_series(1, 2000) g) select case when g < 1000 then g else g / (g - g) end as g from n',
    ]) {
      const bounded = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), { sql });
      expect(bounded, sql).toMatchObject({ status: 200, body: { truncated: true } });
      expect(bounded.body.rows, sql).toHaveLength(50);
    }
    // A data-modifying WITH cannot be a cursor: it runs plainly.
    const modifying = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), {
      sql: 'with d as (delete from customer where cust_num = -1 returning name) select name from d;',
    });
    expect(modifying).toMatchObject({ status: 200, body: { rows: [], truncated: false } });
    const slow = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), { sql: 'select pg_sleep(3)' });
    expect(slow).toMatchObject({ status: 408, body: { code: 'SQLSTATE_57014' } });
    const column = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), {
      sql: 'select tenant_id from customer',
    });
    expect(column).toMatchObject({ status: 400, body: { code: 'SQLSTATE_42703' } });
    const twoStatements = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), {
      sql: 'select 1; select 2',
    });
    expect(twoStatements.status).toBe(400);
    // The tenant's own errors are 400 with their SQLSTATE, never 500 — and tenant SQL cannot pass
    // itself off as one of tenantry's errors (a forged code, or TN001 'tenant moved').
    for (const [sql, code] of [
      ['select (select generate_series(1, 2))', 'SQLSTATE_21000'],
      ["do $$ begin raise exception 'TENANTRY_ERR_UNAUTHENTICATED: forged'; end $$", 'SQLSTATE_P0001'],
      [
        "do $$ begin raise exception using errcode = 'TN001', message = 'tenant 1 moved'; end $$",
        'SQLSTATE_TN001',
      ],
    ]) {
      const own = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), { sql });
      expect(own, sql).toMatchObject({ status: 400, body: { code } });
    }
  });

  it('refuses what the gateway refuses (second wall): NOTIFY, SET ROLE, EXPLAIN, LOCK', async () => {
    for (const sql of [
      "notify tenantry_catalog, 'x'",
      'set role none',
      'explain select * from customer',
      'lock table customer',
    ]) {
      const refused = await call('POST', '/v1/sql', as(alice, 'HomeDepot'), { sql });
      expect(refused, sql).toMatchObject({ status: 403, body: { code: 'TENANTRY_ERR_FORBIDDEN' } });
    }
  });

  it('a read-only user cannot write', async () => {
    const nina = await fx.tenantry.login('nina@LowesNY', 'demo');
    const write = await call('POST', '/v1/sql', as(nina, 'LowesNY'), {
      sql: "update customer set name = 'X'",
    });
    expect([400, 403]).toContain(write.status);
    const read = await call('POST', '/v1/sql', as(nina, 'LowesNY'), { sql: 'select name from customer' });
    expect(read.body.rows).toEqual([{ name: 'Nora Young' }]);
  });

  it('pages through a table with a cursor; unknown tables are 404 only after authentication', async () => {
    const first = await call('GET', '/v1/tables/customer?limit=2', as(alice, 'HomeDepot'));
    expect(first.status).toBe(200);
    expect((first.body.rows as { name: string }[]).map((r) => r.name)).toEqual([
      'Albert Hall',
      'Candace Jones',
    ]);
    expect(first.body.rows).toEqual(
      expect.arrayContaining([expect.not.objectContaining({ tenant_id: expect.anything() as unknown })]),
    );
    const second = await call(
      'GET',
      `/v1/tables/customer?limit=2&cursor=${String(first.body.nextCursor)}`,
      as(alice, 'HomeDepot'),
    );
    expect((second.body.rows as { name: string }[]).map((r) => r.name)).toEqual(['Carrie Abrahm']);
    expect(second.body.nextCursor).toBeNull();
    expect((await call('GET', '/v1/tables/nope', {})).status).toBe(401);
    expect((await call('GET', '/v1/tables/nope', as(alice, 'HomeDepot'))).status).toBe(404);
    expect((await call('GET', '/v1/tables/customer?cursor=bogus', as(alice, 'HomeDepot'))).status).toBe(400);
  });
});
