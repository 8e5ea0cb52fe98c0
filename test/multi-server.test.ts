import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildHttp,
  createTenantry,
  generateMasterKey,
  isTenantryError,
  startEmbedded,
  type EmbeddedServer,
  type Gateway,
  type ScanFailure,
  type ScanRow,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

// Seed 004's stores, spread over two PostgreSQL servers: the catalog's own (`main`) holds a
// shared, a schema and a database tenant; `second` holds two database tenants.
const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-shard-'));
chmodSync(dataDir, 0o755);
let second: EmbeddedServer;
let tenantry: Tenantry;
let gateway: Gateway | undefined;

const CUSTOMERS: Record<string, string[]> = {
  HomeDepot: ['Albert Hall', 'Mona Main'],
  Lowes: ['Fred Smith', 'Paula Schema'],
  Menards: ['Dora Base', 'Zed Zimmer'],
  FarDepot: ['Bea Far', 'Nate North'],
  FarLowes: ['Cleo Coast', 'Yuri Yonder'],
};
/** The customers of some tenants, together. */
const customersOf = (...tenants: string[]): string[] => tenants.flatMap((t) => CUSTOMERS[t] ?? []);
const PLACEMENT = {
  HomeDepot: { isolation: 'shared', loginRole: true },
  Lowes: { isolation: 'schema' },
  Menards: { isolation: 'database' },
  FarDepot: { isolation: 'database', server: 'second' },
  FarLowes: { isolation: 'database', server: 'second' },
} as const;
const ON_SECOND = ['FarDepot', 'FarLowes'];

beforeAll(async () => {
  second = await startEmbedded({ dataDir, port: 0 });
  const url = await createTestDatabase('multi_server');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  await tenantry.servers.add('second', second.url);
  for (const [name, placement] of Object.entries(PLACEMENT)) {
    await tenantry.tenants.create({ name, ...placement });
    await tenantry.withTenant(name, async (db) => {
      for (const [i, customer] of (CUSTOMERS[name] ?? []).entries()) {
        await db.query('INSERT INTO customer (cust_num, name) VALUES ($1, $2)', [i + 1, customer]);
      }
    });
  }
  await tenantry.tenants.create({ name: 'ops', kind: 'super' });
});
afterAll(async () => {
  await gateway?.close(2_000);
  await tenantry?.close();
  await second?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function collect(scan: AsyncIterable<ScanRow>): Promise<ScanRow[]> {
  const rows: ScanRow[] = [];
  for await (const row of scan) rows.push(row);
  return rows;
}

/** What a tenant sees of the customer table, and which server port and database answered. */
async function seen(tenant: string, identity: 'app' | 'tenant' = 'app') {
  return tenantry.withTenant(
    tenant,
    async (db) => {
      const names = await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1');
      const where = await db.query<{ port: number; database: string }>(
        'SELECT inet_server_port() AS port, current_database() AS database',
      );
      return { names: names.rows.map((r) => r.name), ...where.rows[0] };
    },
    { identity },
  );
}

describe('tenants spread over two PostgreSQL servers (the server registry is the shard map)', () => {
  it('places tenants of every isolation model on main and database tenants on the second server', async () => {
    const servers = await tenantry.servers.list();
    // main: the default tenant, ops, HomeDepot, Lowes and Menards
    expect(servers.map((s) => [s.name, s.tenants])).toEqual([
      ['main', 5],
      ['second', 2],
    ]);
    for (const name of Object.keys(PLACEMENT)) {
      const tenant = await tenantry.tenants.show(name);
      expect(tenant.server, name).toBe(ON_SECOND.includes(name) ? 'second' : 'main');
    }
    // Shared and schema tenants live in the catalog database (docs/scaling.md says why).
    const schemaFar = await tenantry.tenants
      .create({ name: 'SchemaFar', isolation: 'schema', server: 'second' })
      .catch((e: unknown) => e);
    expect(isTenantryError(schemaFar, 'INVALID_ARGUMENT')).toBe(true);
    const far = await tenantry.tenants.show('FarDepot');
    const client = new pg.Client({ connectionString: second.url });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [far.databaseName]);
      expect(rows).toHaveLength(1);
    } finally {
      await client.end();
    }
  });

  it('routes every library query by its tenant: far tenants are answered by the second server', async () => {
    const mainPort = Number(new URL(tenantry.config.databaseUrl).port);
    for (const name of Object.keys(PLACEMENT)) {
      for (const identity of ['app', 'tenant'] as const) {
        const view = await seen(name, identity);
        expect(view.names, `${name} as ${identity}`).toEqual(CUSTOMERS[name]);
        expect(view.port, name).toBe(ON_SECOND.includes(name) ? second.port : mainPort);
      }
    }
    const stats = tenantry.poolStats();
    for (const server of stats.servers) expect(server.total).toBeLessThanOrEqual(server.budget);
  });

  it('serves a tenant of the second server through the gateway and over HTTP', async () => {
    await tenantry.domains.add('FarDepot', { tenant: 'FarDepot' });
    await tenantry.users.add('fay@FarDepot', { password: 'demo' });
    gateway = await tenantry.startGateway({ port: 0 });
    const client = new pg.Client({
      connectionString: `postgresql://${encodeURIComponent('fay@FarDepot')}:demo@127.0.0.1:${gateway.port}/tenantry`,
    });
    await client.connect();
    try {
      const names = await client.query<{ name: string }>('SELECT name FROM customer ORDER BY 1');
      expect(names.rows.map((r) => r.name)).toEqual(CUSTOMERS.FarDepot);
      const port = await client.query<{ port: number }>('SELECT inet_server_port() AS port');
      expect(port.rows[0]?.port).toBe(second.port);
    } finally {
      await client.end();
    }

    const { app } = await buildHttp(tenantry, {
      logger: pino({ level: 'silent' }),
      adminToken: 'x'.repeat(32),
    });
    try {
      const token = await tenantry.login('fay@FarDepot', 'demo');
      const response = await app.inject({
        method: 'POST',
        url: '/v1/sql',
        headers: { authorization: `Bearer ${token}`, 'x-tenant-id': 'FarDepot' },
        payload: { sql: 'select name from customer order by 1' },
      });
      expect(response.statusCode).toBe(200);
      const body = response.json<{ rows: { name: string }[] }>();
      expect(body.rows.map((r) => r.name)).toEqual(CUSTOMERS.FarDepot);
    } finally {
      await app.close();
    }
  });

  it('a super tenant’s cross-tenant scan spans both servers in one ordered stream', async () => {
    const everyone = Object.values(CUSTOMERS).flat();
    const ordered = await tenantry.withTenant('ops', () =>
      collect(tenantry.crossTenant({ sql: 'SELECT name FROM customer', orderBy: 'name' })),
    );
    expect(ordered.map((r) => r.name)).toEqual([...everyone].sort());
    const tenantOf = new Map(ordered.map((r) => [r.name as string, r._tenant_name]));
    for (const [tenant, names] of Object.entries(CUSTOMERS))
      for (const name of names) expect(tenantOf.get(name)).toBe(tenant);

    // By tenant (the default order), with a tenant selection, as the operator
    const byTenant = await collect(
      tenantry.crossTenant({ sql: 'SELECT name FROM customer ORDER BY name', asOperator: true }),
    );
    const ids = byTenant.map((r) => r._tenant_id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(byTenant.map((r) => r._tenant_name))).toEqual(new Set(Object.keys(CUSTOMERS)));
    const farOnly = await collect(
      tenantry.crossTenant({ sql: 'SELECT name FROM customer', where: "name like 'Far%'", asOperator: true }),
    );
    expect(farOnly.map((r) => r.name).sort()).toEqual(customersOf('FarDepot', 'FarLowes').sort());
  });

  it('a selection of database tenants on both servers merges them alone', async () => {
    const rows = await collect(
      tenantry.crossTenant({
        sql: 'SELECT name FROM customer',
        where: "name in ('Menards', 'FarDepot')",
        orderBy: 'name',
        asOperator: true,
      }),
    );
    expect(rows.map((r) => r.name)).toEqual(customersOf('Menards', 'FarDepot').sort());

    // Also when no active shared or schema tenant is left to scan at all.
    await tenantry.tenants.disable('HomeDepot');
    await tenantry.tenants.disable('Lowes');
    try {
      const only = await collect(
        tenantry.crossTenant({ sql: 'SELECT name FROM customer', asOperator: true }),
      );
      expect(only.map((r) => r.name).sort()).toEqual(customersOf('Menards', 'FarDepot', 'FarLowes').sort());
    } finally {
      await tenantry.tenants.enable('HomeDepot');
      await tenantry.tenants.enable('Lowes');
    }
  });

  it('when the second server stops answering, only its tenants fail, with a clear error', async () => {
    const port = second.port;
    await second.stop();
    try {
      for (const name of ON_SECOND) {
        const error = await seen(name).catch((e: unknown) => e);
        expect(isTenantryError(error, 'DATABASE_UNREACHABLE'), String(error)).toBe(true);
        expect(String((error as Error).message)).toContain('second');
      }
      for (const name of ['HomeDepot', 'Lowes', 'Menards']) {
        expect((await seen(name)).names, name).toEqual(CUSTOMERS[name]);
      }
      // A partial scan reports the far tenants and returns everyone else's rows, in order.
      const failures: ScanFailure[] = [];
      const rows = await collect(
        tenantry.crossTenant(
          { sql: 'SELECT name FROM customer', orderBy: 'name', onError: 'partial', asOperator: true },
          failures,
        ),
      );
      expect(failures.map((f) => f.tenant).sort()).toEqual(ON_SECOND);
      for (const failure of failures)
        expect(isTenantryError(failure.error, 'DATABASE_UNREACHABLE')).toBe(true);
      const near = customersOf('HomeDepot', 'Lowes', 'Menards').sort();
      expect(rows.map((r) => r.name)).toEqual(near);
      const byTenant = await collect(
        tenantry.crossTenant({ sql: 'SELECT name FROM customer', onError: 'partial', asOperator: true }, []),
      );
      expect(byTenant.map((r) => r.name).sort()).toEqual(near);
      // Under `fail` (the default) the scan stops with the same clear error.
      const failed = await collect(
        tenantry.crossTenant({ sql: 'SELECT name FROM customer', asOperator: true }),
      ).catch((e: unknown) => e);
      expect(isTenantryError(failed, 'DATABASE_UNREACHABLE')).toBe(true);
    } finally {
      second = await startEmbedded({ dataDir, port });
    }
    expect(second.port).toBe(port);
    // Back on the same address: its tenants work again without a restart of tenantry.
    for (const name of ON_SECOND) expect((await seen(name)).names, name).toEqual(CUSTOMERS[name]);
  });
});
