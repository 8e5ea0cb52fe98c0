import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  startEmbedded,
  type EmbeddedServer,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-second-'));
chmodSync(dataDir, 0o755);
let second: EmbeddedServer;
let tenantry: Tenantry;
let mainUrl: string;
const masterKey = generateMasterKey();

beforeAll(async () => {
  second = await startEmbedded({ dataDir, port: 0 });
  const url = await createTestDatabase('servers');
  mainUrl = url;
  tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
});
afterAll(async () => {
  await tenantry?.close();
  await second?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const names = async (tenant: string, identity: 'app' | 'tenant') =>
  tenantry.withTenant(
    tenant,
    async (db) =>
      (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
    { identity },
  );

describe('tenants on two PostgreSQL servers', () => {
  it('registers a second server and places database tenants on it', async () => {
    const added = await tenantry.servers.add('second', second.url);
    expect(added.name).toBe('second');
    const far = await tenantry.tenants.create({ name: 'FarAway', isolation: 'database', server: 'second' });
    const near = await tenantry.tenants.create({ name: 'NearBy', isolation: 'database' });
    await tenantry.tenants.create({ name: 'Local', loginRole: true });
    expect(far).toMatchObject({ server: 'second', isolation: 'database' });
    expect(near).toMatchObject({ server: 'main', isolation: 'database' });
    for (const [tenant, customer] of [
      ['FarAway', 'Fiona Far'],
      ['NearBy', 'Nate Near'],
      ['Local', 'Lola Local'],
    ] as const) {
      await tenantry.withTenant(tenant, (db) =>
        db.query('INSERT INTO customer (cust_num, name) VALUES (1, $1)', [customer]),
      );
    }
    for (const identity of ['app', 'tenant'] as const) {
      expect(await names('FarAway', identity)).toEqual(['Fiona Far']);
      expect(await names('NearBy', identity)).toEqual(['Nate Near']);
      expect(await names('Local', identity)).toEqual(['Lola Local']);
    }
    const list = await tenantry.servers.list();
    expect(list.map((s) => [s.name, s.tenants])).toEqual([
      ['main', 3],
      ['second', 1],
    ]);
  });

  it('the far tenant’s database really is on the second server, and reads global tables from the catalog', async () => {
    const far = await tenantry.tenants.show('FarAway');
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = $1', [
        far.databaseName,
      ]);
      expect(rows).toHaveLength(1);
    } finally {
      await client.end();
    }
    const states = await tenantry.withTenant(
      'FarAway',
      async (db) =>
        (await db.query<{ code: string }>('SELECT code FROM state ORDER BY 1')).rows.map((r) => r.code),
      { identity: 'tenant' },
    );
    expect(states).toEqual(['GA', 'NC']);
  });

  it('disabling a far tenant closes its login roles on its own server too', async () => {
    const far = await tenantry.tenants.show('FarAway');
    const { default: pg } = await import('pg');
    const canLogin = async () => {
      const client = new pg.Client({ connectionString: second.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ login: boolean }>(
          'SELECT rolcanlogin AS login FROM pg_roles WHERE rolname = $1',
          [far.role],
        );
        return rows[0]?.login;
      } finally {
        await client.end();
      }
    };
    expect(await canLogin()).toBe(true);
    await tenantry.tenants.disable('FarAway');
    expect(await canLogin()).toBe(false);
    await tenantry.tenants.enable('FarAway');
    expect(await canLogin()).toBe(true);
  });

  it('adding a server twice, or its cluster under another name, leaves the app role password alone', async () => {
    const again = await tenantry.servers.add('second', second.url).catch((e: unknown) => e);
    expect(isTenantryError(again, 'INVALID_ARGUMENT'), String(again)).toBe(true);
    await tenantry.servers.add('alias', second.url);
    await tenantry.servers.add('home', mainUrl);
    // A process that opens new connections with the stored passwords still gets in everywhere.
    const fresh = await createTenantry({ databaseUrl: mainUrl, masterKey });
    try {
      for (const tenant of ['FarAway', 'NearBy']) {
        const n = await fresh.withTenant(
          tenant,
          async (db) => (await db.query('SELECT 1 AS one')).rows.length,
        );
        expect(n, tenant).toBe(1);
      }
    } finally {
      await fresh.close();
    }
    await tenantry.servers.remove('alias');
    await tenantry.servers.remove('home');
  });

  it('keeps one connection budget per server', async () => {
    const stats = tenantry.poolStats();
    expect(stats.servers.map((s) => s.server).sort()).toEqual(['main', 'second']);
    for (const server of stats.servers) expect(server.total).toBeLessThanOrEqual(server.budget);
  });

  it('tables declared later reach database tenants on every server', async () => {
    await tenantry.operator.query(`
      CREATE TABLE invoice (tenant_id int NOT NULL, id int NOT NULL, amount numeric NOT NULL, PRIMARY KEY (tenant_id, id));
      CREATE TABLE region (code text PRIMARY KEY);
      INSERT INTO region VALUES ('south'), ('east');`);
    await tenantry.tables.multiTenant('public.invoice');
    await tenantry.tables.shared('public.region');
    for (const tenant of ['FarAway', 'NearBy']) {
      const seen = await tenantry.withTenant(
        tenant,
        async (db) => {
          await db.query('INSERT INTO invoice (id, amount) VALUES (1, 10.5)');
          const invoices = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM invoice');
          const regions = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM region');
          return [invoices.rows[0]?.n, regions.rows[0]?.n];
        },
        { identity: 'tenant' },
      );
      expect(seen, tenant).toEqual([1, 2]);
    }
  });

  it('refuses to remove a server that holds tenants, and drops a far tenant with its database', async () => {
    const inUse = await tenantry.servers.remove('second').catch((e: unknown) => e);
    expect(isTenantryError(inUse, 'SERVER_IN_USE')).toBe(true);
    const far = await tenantry.tenants.show('FarAway');
    await tenantry.tenants.drop('FarAway', { force: true });
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    try {
      const db = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [far.databaseName]);
      const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [far.role]);
      expect(db.rows).toHaveLength(0);
      expect(role.rows).toHaveLength(0);
    } finally {
      await client.end();
    }
    await tenantry.servers.remove('second');
    expect((await tenantry.servers.list()).map((s) => s.name)).toEqual(['main']);
  });

  it('rejects bad server names and unreachable servers with stable codes', async () => {
    expect(
      isTenantryError(
        await tenantry.servers.add('Bad Name', second.url).catch((e: unknown) => e),
        'INVALID_ARGUMENT',
      ),
    ).toBe(true);
    const unreachable = await tenantry.servers
      .add('gone', 'postgresql://x:y@127.0.0.1:1/postgres')
      .catch((e: unknown) => e);
    expect(isTenantryError(unreachable, 'DATABASE_UNREACHABLE')).toBe(true);
    const unknown = await tenantry.tenants
      .create({ name: 'Nowhere', isolation: 'database', server: 'nope' })
      .catch((e: unknown) => e);
    expect(isTenantryError(unknown, 'SERVER_NOT_FOUND')).toBe(true);
  });
});
