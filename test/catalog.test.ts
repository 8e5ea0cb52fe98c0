import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { installCatalog } from '../src/catalog/index.js';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';
import { createTestDatabase, serverUrl, urlFor, withClient } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

const open: Tenantry[] = [];
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
});

async function start(
  url: string,
  options: { catalogPollMs?: number; masterKey?: string } = {},
): Promise<Tenantry> {
  const t = await createTenantry({ databaseUrl: url, ...options });
  open.push(t);
  return t;
}

describe('catalog installation', () => {
  it('installs once; installing again is a no-op', async () => {
    const url = await createTestDatabase('catalog_idem');
    const first = await withClient(url, (c) => installCatalog(c));
    expect(first.applied.length).toBeGreaterThan(0);
    const second = await withClient(url, (c) => installCatalog(c));
    expect(second.applied).toEqual([]);
    expect(second.version).toBe(first.version);
    expect(second.appPassword).toBe(first.appPassword);
  });

  it('concurrent installers do not corrupt it', async () => {
    const url = await createTestDatabase('catalog_conc');
    const results = await Promise.all(
      Array.from({ length: 6 }, () => withClient(url, (c) => installCatalog(c))),
    );
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(new Set(results.map((r) => r.appPassword)).size).toBe(1);
    await withClient(url, async (client) => {
      const { rows } = await client.query(
        'SELECT count(*)::int AS n, count(DISTINCT version)::int AS d FROM tenantry.catalog_version',
      );
      expect(rows[0]?.n).toBe(rows[0]?.d);
      const tenants = await client.query('SELECT id, name FROM tenantry.tenant');
      expect(tenants.rows).toEqual([{ id: 0, name: 'Default' }]);
    });
  });

  it('refuses a second database whose name maps to the same role names (my-app and my_app)', async () => {
    const suffix = randomBytes(3).toString('hex');
    const names = [`t-roles-${suffix}`, `t_roles_${suffix}`];
    await withClient(serverUrl(), async (c) => {
      for (const name of names) await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    });
    const first = await start(urlFor(serverUrl(), names[0]!));
    const error = await createTenantry({ databaseUrl: urlFor(serverUrl(), names[1]!) }).catch(
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).toBe('TENANTRY_ERR_CATALOG_ROLES_TAKEN');
    expect((error as Error).message).toContain(names[0]);
    // The first catalog is untouched: its app role still logs in with its password.
    expect(await first.withTenant('default', async (db) => (await db.query('SELECT 1 AS one')).rows)).toEqual(
      [{ one: 1 }],
    );
    // And it starts again (its own mark).
    await start(urlFor(serverUrl(), names[0]!));
  });

  it('rejects unknown configuration keys by name', async () => {
    const error = await createTenantry({
      databaseUrl: 'postgresql://x@127.0.0.1:1/x',
      pools: 3,
    } as never).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/unknown key\(s\) pools/);
    expect((error as { code: string }).code).toBe('TENANTRY_ERR_CONFIG');
  });

  it('names the unreachable server without its password', async () => {
    const error = await createTenantry({ databaseUrl: 'postgresql://u:secret@127.0.0.1:1/x' }).catch(
      (e: unknown) => e,
    );
    expect((error as { code: string }).code).toBe('TENANTRY_ERR_DATABASE_UNREACHABLE');
    expect((error as Error).message).toContain('127.0.0.1:1/x');
    expect((error as Error).message).not.toContain('secret');
  });
});

describe('multi-tenant table declarations', () => {
  it('explain how to fix a table whose tenant column is missing or not first in the primary key', async () => {
    const url = await createTestDatabase('catalog_shape');
    const t = await start(url);
    await withClient(url, (c) =>
      c.query(`
        CREATE TABLE no_tenant (id int PRIMARY KEY);
        CREATE TABLE second_pk (id int, tenant_id int, PRIMARY KEY (id, tenant_id));
        CREATE TABLE text_tenant (tenant_id text, id int, PRIMARY KEY (tenant_id, id));
        CREATE TABLE leaky_unique (tenant_id int, id int, email text UNIQUE, PRIMARY KEY (tenant_id, id));
        CREATE TABLE parent (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
        CREATE TABLE child (tenant_id int, id int, parent_id int, PRIMARY KEY (tenant_id, id),
                            UNIQUE (parent_id, tenant_id));
        CREATE VIEW some_view AS SELECT 1 AS x;`),
    );
    const failure = async (table: string) => {
      const error = await t.tables.multiTenant(table).catch((e: unknown) => e);
      return { code: (error as { code?: string }).code, message: (error as Error).message };
    };
    const missing = await failure('public.no_tenant');
    expect(missing.code).toBe('TENANTRY_ERR_TABLE_SHAPE');
    expect(missing.message).toMatch(
      /must exist and be the first primary-key column.*ADD PRIMARY KEY \(tenant_id, id\)/s,
    );
    expect((await failure('public.second_pk')).code).toBe('TENANTRY_ERR_TABLE_SHAPE');
    expect((await failure('public.text_tenant')).message).toMatch(/must be of type integer/);
    expect((await failure('public.leaky_unique')).message).toMatch(/unique index .*email.* does not include/);
    expect((await failure('public.some_view')).message).toMatch(/not a table/);
    expect((await failure('public.nope')).code).toBe('TENANTRY_ERR_TABLE_NOT_FOUND');
    expect((await failure('x; drop table parent')).code).toBe('TENANTRY_ERR_INVALID_ARGUMENT');

    await t.tables.multiTenant('public.parent');
    await withClient(url, (c) =>
      c.query('ALTER TABLE child ADD FOREIGN KEY (parent_id) REFERENCES parent (id)').catch(() => undefined),
    );
    await withClient(url, (c) => c.query('ALTER TABLE parent ADD CONSTRAINT parent_id_key UNIQUE (id)'));
    await withClient(url, (c) =>
      c.query(
        'ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id)',
      ),
    );
    expect((await failure('public.child')).message).toMatch(/foreign key child_parent_fk/);
  });

  it('refuses every key shape that lets one tenant probe another: INCLUDE-only tenant column, partitions, exclusion constraints, a reversed foreign key', async () => {
    const url = await createTestDatabase('catalog_keys');
    const t = await start(url);
    await withClient(url, (c) =>
      c.query(`
        CREATE TABLE included (tenant_id int, id int, sku text, PRIMARY KEY (tenant_id, id));
        CREATE UNIQUE INDEX included_sku ON included (sku) INCLUDE (tenant_id);
        CREATE TABLE parted (tenant_id int, id int, sku text, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
        CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
        CREATE UNIQUE INDEX parted_1_sku ON parted_1 (sku);
        CREATE TABLE booking (tenant_id int, id int, room int, during int4range, PRIMARY KEY (tenant_id, id),
                              EXCLUDE USING gist (during WITH &&));
        CREATE TABLE customer2 (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
        CREATE TABLE order2 (tenant_id int, id int, customer_id int, PRIMARY KEY (tenant_id, id),
                             CONSTRAINT order2_customer FOREIGN KEY (tenant_id, customer_id) REFERENCES customer2 (id, tenant_id));
        CREATE TABLE fine (tenant_id int, id int, sku text, room int, during int4range, PRIMARY KEY (tenant_id, id),
                           UNIQUE (tenant_id, sku));`),
    );
    const failure = async (table: string) => {
      const error = await t.tables.multiTenant(table).catch((e: unknown) => e);
      return { code: (error as { code?: string }).code, message: String((error as Error).message) };
    };
    expect(await failure('public.included')).toMatchObject({
      code: 'TENANTRY_ERR_TABLE_SHAPE',
      message: expect.stringMatching(/included_sku does not include the tenant column/) as string,
    });
    expect((await failure('public.parted')).message).toMatch(/parted_1_sku/);
    expect((await failure('public.booking')).message).toMatch(/exclusion constraint .* does not compare/);
    // The referenced table is refused while a reversed foreign key points at it.
    expect((await failure('public.customer2')).message).toMatch(/foreign key order2_customer/);
    // Nothing was half-declared, and a correct table still passes.
    expect(t.tables.list()).toEqual([]);
    await t.tables.multiTenant('public.fine');
  });

  it('declaring a table twice is harmless and the registry lists it', async () => {
    const url = await createTestDatabase('catalog_twice');
    const t = await start(url);
    await createStoreTables(url);
    await t.tables.multiTenant('public.customer');
    const again = await t.tables.multiTenant('customer');
    expect(again).toMatchObject({
      schema: 'public',
      table: 'customer',
      kind: 'multi_tenant',
      tenantColumn: 'tenant_id',
    });
    await t.tables.shared('public.state');
    expect(t.tables.list().map((r) => `${r.kind}:${r.table}`)).toEqual([
      'multi_tenant:customer',
      'shared:state',
    ]);
    await withClient(url, async (c) => {
      const { rows } = await c.query<{ relrowsecurity: boolean; relforcerowsecurity: boolean }>(
        "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.customer'::regclass",
      );
      expect(rows[0]).toEqual({ relrowsecurity: true, relforcerowsecurity: true });
      const policies = await c.query(
        "SELECT string_agg(policyname || ':' || permissive, ',' ORDER BY policyname) AS n FROM pg_policies WHERE tablename = 'customer'",
      );
      expect(policies.rows[0]?.n).toBe('tenantry_isolation:PERMISSIVE');
    });
  });
});

describe('catalog cache', () => {
  it('sees a change made by another process within 1 s (NOTIFY), and a forged NOTIFY changes nothing', async () => {
    const url = await createTestDatabase('catalog_notify');
    const watcher = await start(url, { catalogPollMs: 600_000 });
    const other = await start(url, { catalogPollMs: 600_000 });
    const created = await other.tenants.create({ name: 'Remote' });
    const seen = async (predicate: () => boolean) => {
      const started = Date.now();
      while (!predicate()) {
        if (Date.now() - started > 1000) throw new Error('not seen within 1 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      return Date.now() - started;
    };
    expect(await seen(() => watcher.catalog.get('Remote')?.id === created.id)).toBeLessThan(1000);
    await other.tenants.disable('Remote');
    expect(await seen(() => watcher.catalog.get('Remote')?.state === 'disabled')).toBeLessThan(1000);

    await withClient(url, (c) => c.query(`NOTIFY tenantry_catalog, '{"id":${created.id},"state":"active"}'`));
    await new Promise((r) => setTimeout(r, 200));
    expect(watcher.catalog.get('Remote')?.state).toBe('disabled');
  });

  it('re-reads only what changed and ends where a full read does: a name swap, removals, a reused name, roles', async () => {
    const url = await createTestDatabase('catalog_incremental');
    const watcher = await start(url, { catalogPollMs: 600_000 });
    const other = await start(url, { catalogPollMs: 600_000, masterKey: generateMasterKey() });
    const seen = async (what: string, predicate: () => boolean) => {
      const started = Date.now();
      while (!predicate()) {
        if (Date.now() - started > 1000) throw new Error(`${what}: not seen within 1 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const alpha = await other.tenants.create({ name: 'Alpha' });
    const beta = await other.tenants.create({ name: 'Beta' });
    const gamma = await other.tenants.create({ name: 'Gamma' });
    await seen('created', () => watcher.catalog.get('Gamma')?.id === gamma.id);

    // names swapped in one transaction
    await withClient(url, (c) =>
      c.query(`BEGIN;
        UPDATE tenantry.tenant SET name = 'Swapping' WHERE id = ${alpha.id};
        UPDATE tenantry.tenant SET name = 'Alpha' WHERE id = ${beta.id};
        UPDATE tenantry.tenant SET name = 'Beta' WHERE id = ${alpha.id};
        COMMIT`),
    );
    await seen(
      'swap',
      () => watcher.catalog.get('Alpha')?.id === beta.id && watcher.catalog.get('Beta')?.id === alpha.id,
    );
    expect(watcher.catalog.get('Swapping')).toBeUndefined();

    // a removed tenant is gone by id, name and uuid; a new tenant takes its name
    await other.tenants.drop('Gamma', { force: true });
    await seen('removed', () => watcher.catalog.get(gamma.id) === undefined);
    expect(watcher.catalog.get('Gamma')).toBeUndefined();
    expect(watcher.catalog.get(gamma.uuid)).toBeUndefined();
    const gamma2 = await other.tenants.create({ name: 'Gamma' });
    await seen('reused name', () => watcher.catalog.get('Gamma')?.id === gamma2.id);

    // a login role (a row of tenantry.tenant_role) is part of the cached tenant
    await other.tenants.create({ name: 'Roled', loginRole: true });
    await seen('role', () => typeof watcher.catalog.get('Roled')?.role === 'string');
    // a role row added later, in a transaction of its own, still refreshes its tenant
    await withClient(url, (c) =>
      c.query(
        `INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ('catalog_test_role', ${beta.id}, 'admin')`,
      ),
    );
    await seen('later role', () => watcher.catalog.get(beta.id)?.role === 'catalog_test_role');

    // and a change made by another transaction while a read was under way is not lost
    await Promise.all(Array.from({ length: 20 }, (_, i) => other.tenants.create({ name: `Burst${i}` })));
    await seen(
      'burst',
      () => watcher.catalog.tenants().filter((t) => t.name.startsWith('Burst')).length === 20,
    );

    const fresh = await start(url, { catalogPollMs: 600_000 });
    expect(watcher.catalog.tenants()).toEqual(fresh.catalog.tenants());
  });

  it('a reload asked for after a change sees it, even while an earlier read is under way', async () => {
    const url = await createTestDatabase('catalog_reload_race');
    const cache = await start(url, { catalogPollMs: 600_000 });
    const writer = new pg.Client({ connectionString: url });
    await writer.connect();
    try {
      for (let i = 0; i < 30; i++) {
        const earlier = cache.catalog.reload(); // under way while the change commits
        await writer.query(
          `INSERT INTO tenantry.tenant (id, name, kind) VALUES (nextval('tenantry.regular_tenant_id'), 'Race${i}', 'regular')`,
        );
        await cache.catalog.reload();
        expect(cache.catalog.get(`Race${i}`)?.name, `round ${i}`).toBe(`Race${i}`);
        await earlier;
      }
    } finally {
      await writer.end();
    }
  });

  it('recovers when its listening connection is killed', async () => {
    const url = await createTestDatabase('catalog_relisten');
    const watcher = await start(url, { catalogPollMs: 600_000 });
    await withClient(url, (c) =>
      c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenantry-listener' AND datname = current_database()",
      ),
    );
    await new Promise((r) => setTimeout(r, 1200));
    await withClient(url, (c) =>
      c.query(
        "INSERT INTO tenantry.tenant (id, name, kind) VALUES (nextval('tenantry.regular_tenant_id'), 'Late', 'regular')",
      ),
    );
    const started = Date.now();
    while (!watcher.catalog.get('Late') && Date.now() - started < 3000)
      await new Promise((r) => setTimeout(r, 20));
    expect(watcher.catalog.get('Late')?.name).toBe('Late');
  });
});
