import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import {
  createTenantry,
  generateMasterKey,
  startEmbedded,
  type EmbeddedServer,
  type Tenantry,
} from '../../src/index.js';
import { createTestDatabase, withClient } from '../helpers/db.js';
import { createStoreTables } from '../helpers/fixtures.js';
import { customers, SteadyWriter } from './move-helpers.js';

// src/cli/main.ts reads its version from package.json as laid out under dist/: answer it here
vi.mock('node:module', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:module')>();
  return {
    ...real,
    createRequire: (from: string | URL) => {
      const require = real.createRequire(from);
      return Object.assign(
        (id: string): unknown => (id.endsWith('package.json') ? { version: '0.0.0-test' } : require(id)),
        require,
      );
    },
  };
});

const key = generateMasterKey();
const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-move-second-'));
chmodSync(dataDir, 0o755);
let second: EmbeddedServer;
let url: string;
let t: Tenantry;

beforeAll(async () => {
  second = await startEmbedded({ dataDir, port: 0 });
  url = await createTestDatabase('move_servers');
  t = await createTenantry({ databaseUrl: url, masterKey: key });
  await createStoreTables(url);
  await t.tables.multiTenant('public.customer');
  await t.tables.shared('public.state');
  await t.servers.add('second', second.url);
  await t.tenants.create({ name: 'Roamer', isolation: 'database' });
  await t.tenants.create({ name: 'Stayer', loginRole: true });
  for (const name of ['Roamer', 'Stayer']) {
    await t.withTenant(name, (db) =>
      db.query('INSERT INTO customer (cust_num, name) SELECT g, $1 || g FROM generate_series(1, 1000) g', [
        `${name} `,
      ]),
    );
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
  await second?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The port of the server that answers the tenant's queries. */
async function servedBy(tenant: string): Promise<number> {
  const { rows } = await t.withTenant(tenant, (db) =>
    db.query<{ port: number }>('SELECT inet_server_port() AS port'),
  );
  return rows[0]?.port ?? 0;
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const saved = process.env['TENANTRY_MASTER_KEY'];
  process.env['TENANTRY_MASTER_KEY'] = key;
  try {
    const code = await main(['node', 'tenantry', '--database-url', url, ...args]);
    return { code, stdout, stderr };
  } finally {
    if (saved === undefined) delete process.env['TENANTRY_MASTER_KEY'];
    else process.env['TENANTRY_MASTER_KEY'] = saved;
    out.mockRestore();
    err.mockRestore();
  }
}

describe('moving tenants between servers', () => {
  it('refuses to move a database tenant to its own cluster registered under another name (it would drop its database)', async () => {
    const before = await customers(t, 'Roamer');
    await t.servers.add('again', url);
    try {
      const refused = await t.moves
        .move('Roamer', { to: 'database', server: 'again' })
        .catch((e: unknown) => e);
      expect((refused as { code?: string }).code).toBe('TENANTRY_ERR_MOVE_UNSUPPORTED');
      expect((refused as Error).message).toMatch(/already has a database .*the tenant's own/);
      expect(await t.moves.list()).toEqual([]);
      expect(await customers(t, 'Roamer')).toEqual(before);
    } finally {
      await t.servers.remove('again');
    }
  });

  it('moves a database tenant to the second server under writes, and drops the first copy', async () => {
    const mainPort = await servedBy('Roamer');
    const before = await customers(t, 'Roamer');
    const old = await t.tenants.show('Roamer');
    const writer = new SteadyWriter(t, 'Roamer', 50_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const report = await t.moves.move('Roamer', { to: 'database', server: 'second' });
    await writer.stop();
    expect(writer.errors).toEqual([]);
    expect(report.to).toMatchObject({ isolation: 'database', server: 'second' });
    expect(await t.tenants.show('Roamer')).toMatchObject({ isolation: 'database', server: 'second' });
    expect(await servedBy('Roamer')).toBe(second.port);
    expect(mainPort).not.toBe(second.port);
    const after = await customers(t, 'Roamer');
    expect(new Set(after.keys())).toEqual(new Set([...before.keys(), ...writer.inserted]));
    expect(after.get(1)).toBe(`${before.get(1)}${'+'.repeat(writer.updates)}`);
    const gone = await withClient(url, (c) =>
      c.query('SELECT 1 FROM pg_database WHERE datname = $1', [old.databaseName]),
    );
    expect(gone.rows).toEqual([]);
  });

  it('the moved tenant logs in through the gateway and sees only its rows, served by the second server', async () => {
    await t.domains.add('roamer', { tenant: 'Roamer' });
    await t.users.add('rita@roamer', { password: 'rita-pass-123' });
    const gateway = await t.startGateway({ port: 0 });
    const client = new pg.Client({
      connectionString: `postgresql://${encodeURIComponent('rita@roamer')}:rita-pass-123@127.0.0.1:${gateway.port}/tenantry`,
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ n: number; port: number; t: string }>(
        "SELECT count(*)::int AS n, inet_server_port() AS port, tenantry.tenant_name() AS t FROM customer WHERE name NOT LIKE 'Roamer %' AND name NOT LIKE 'writer %'",
      );
      expect(rows[0]).toEqual({ n: 0, port: second.port, t: 'Roamer' });
    } finally {
      await client.end().catch(() => undefined);
      await gateway.close();
    }
  });

  it('the CLI moves a shared tenant to the second server and reports the pause', async () => {
    const run = await cli('tenant', 'move', 'Stayer', '--to', 'database', '--server', 'second', '--json');
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { rows: number; pauseMs: number; to: { server: string } };
    expect(report.rows).toBe(1000);
    expect(report.to.server).toBe('second');
    expect(run.stderr).toContain('cutover: switched to database');
    expect((await customers(t, 'Stayer')).size).toBe(1000);
    const list = await cli('tenant', 'moves', '--json');
    expect(JSON.parse(list.stdout)).toEqual([]);
    // nothing the moves left behind is an orphan to repair (moved roles and databases are the tenants')
    const repair = await cli('tenant', 'repair', '--dry-run', '--json');
    expect(repair.code, repair.stderr).toBe(0);
    expect(JSON.parse(repair.stdout)).toMatchObject({ dryRun: true, orphans: [], failed: false });
    expect((await cli('tenant', 'repair')).stdout).toContain(
      'no orphaned tenant databases, roles or schemas',
    );
    const bad = await cli('tenant', 'move', 'Stayer', '--to', 'database', '--server', 'second');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('TENANTRY_ERR_INVALID_ARGUMENT');
  });
});
