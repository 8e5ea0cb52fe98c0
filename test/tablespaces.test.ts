import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

// Seed 004's storage areas: schema and database tenants placed in PostgreSQL tablespaces.
let url: string;
let tenantry: Tenantry;
const masterKey = generateMasterKey();
const suffix = randomBytes(3).toString('hex');
const AREA_A = `area_a_${suffix}`;
const AREA_B = `area_b_${suffix}`;
const base = mkdtempSync(join(tmpdir(), 'tenantry-areas-'));
chmodSync(base, 0o755);

/** A directory for a tablespace, owned by the OS user the test server runs as. */
async function areaDir(name: string): Promise<string> {
  const dataDirectory = await withClient(url, async (client) => {
    const { rows } = await client.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir");
    return (rows[0] as { dir: string }).dir;
  });
  const owner = statSync(dataDirectory);
  const dir = join(base, name);
  mkdirSync(dir);
  chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, 0o700);
  return dir;
}

/** Runs the built CLI (`npm test` builds it) against this file's database. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = join(import.meta.dirname, '..', 'bin', 'tenantry.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--database-url', url, ...args], {
      env: { ...process.env, TENANTRY_MASTER_KEY: masterKey, TENANTRY_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const customers = async (tenant: string, identity: 'app' | 'tenant' = 'app'): Promise<string[]> =>
  tenantry.withTenant(
    tenant,
    async (db) =>
      (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
    { identity },
  );

/** The tablespaces (by name; the database default as `pg_default`) of a schema tenant's relations. */
async function schemaTablespaces(tenant: string): Promise<Map<string, string>> {
  const t = await tenantry.tenants.show(tenant);
  const { rows } = await tenantry.operator.query<{ rel: string; spc: string }>(
    `SELECT c.relname AS rel,
            coalesce(s.spcname, (SELECT ds.spcname FROM pg_database d JOIN pg_tablespace ds ON ds.oid = d.dattablespace
                                 WHERE d.datname = current_database())) AS spc
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_tablespace s ON s.oid = nullif(c.reltablespace, 0)
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'm', 'p')`,
    [t.schemaName],
  );
  return new Map(rows.map((r) => [r.rel, r.spc]));
}

async function databaseTablespace(tenant: string): Promise<string | undefined> {
  const t = await tenantry.tenants.show(tenant);
  const { rows } = await tenantry.operator.query<{ spc: string }>(
    `SELECT s.spcname AS spc FROM pg_database d JOIN pg_tablespace s ON s.oid = d.dattablespace WHERE d.datname = $1`,
    [t.databaseName],
  );
  return rows[0]?.spc;
}

beforeAll(async () => {
  url = await createTestDatabase('tablespaces');
  tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  await tenantry.servers.createTablespace('main', AREA_A, await areaDir('a'));
  await tenantry.servers.createTablespace('main', AREA_B, await areaDir('b'));
});
afterAll(async () => {
  for (const tenant of ['HomeDepot', 'Lowes', 'Menards', 'Sears'])
    await tenantry?.tenants.drop(tenant, { force: true }).catch(() => undefined);
  await tenantry?.close();
  const dropped = await withClient(url, async (client) => {
    // The test database's own relations never went there; the tenants that did are dropped.
    for (const area of [AREA_A, AREA_B]) await client.query(`DROP TABLESPACE IF EXISTS ${area}`);
    return true;
  }).catch(() => false);
  // A tablespace still in use keeps its directory until the test server goes away.
  if (dropped) rmSync(base, { recursive: true, force: true });
});

describe('storage areas (seed 004): tablespaces of schema and database tenants', () => {
  it('creates a schema tenant’s tables and indexes in its tablespace', async () => {
    const lowes = await tenantry.tenants.create({ name: 'Lowes', isolation: 'schema', tablespace: AREA_A });
    expect(lowes.tablespace).toBe(AREA_A);
    const placed = await schemaTablespaces('Lowes');
    // its copy of customer, with its primary key, and its runtime tables (jobs, events, ids)
    expect([...placed.keys()]).toEqual(expect.arrayContaining(['customer', 'customer_pkey', 'tenantry_job']));
    expect(new Set(placed.values())).toEqual(new Set([AREA_A]));
    await tenantry.withTenant('Lowes', (db) =>
      db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Fred Smith'), (2, 'Joan Adlon')"),
    );
    expect(await customers('Lowes', 'tenant')).toEqual(['Fred Smith', 'Joan Adlon']);
  });

  it('creates a database tenant’s database in its tablespace', async () => {
    const menards = await tenantry.tenants.create({
      name: 'Menards',
      isolation: 'database',
      tablespace: AREA_A,
    });
    expect(menards.tablespace).toBe(AREA_A);
    expect(await databaseTablespace('Menards')).toBe(AREA_A);
    await tenantry.withTenant('Menards', (db) =>
      db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Dora Base'), (2, 'Zed Zimmer')"),
    );
    expect(await customers('Menards', 'tenant')).toEqual(['Dora Base', 'Zed Zimmer']);
  });

  it('moves a schema tenant to another tablespace with its data and isolation intact', async () => {
    await tenantry.tenants.create({ name: 'HomeDepot' });
    await tenantry.withTenant('HomeDepot', (db) =>
      db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Albert Hall')"),
    );
    const moved = await tenantry.tenants.setTablespace('Lowes', AREA_B);
    expect(moved.tablespace).toBe(AREA_B);
    expect(new Set((await schemaTablespaces('Lowes')).values())).toEqual(new Set([AREA_B]));
    expect(await customers('Lowes')).toEqual(['Fred Smith', 'Joan Adlon']);
    expect(await customers('Lowes', 'tenant')).toEqual(['Fred Smith', 'Joan Adlon']);
    expect(await customers('HomeDepot')).toEqual(['Albert Hall']);
    // Back to the database's default tablespace.
    await tenantry.tenants.setTablespace('Lowes', 'pg_default');
    expect(new Set((await schemaTablespaces('Lowes')).values())).toEqual(new Set(['pg_default']));
    expect(await customers('Lowes')).toEqual(['Fred Smith', 'Joan Adlon']);
  });

  it('moves a database tenant while it has sessions: open transactions finish, then it reconnects', async () => {
    // A pooled session is open on the tenant's database, and a transaction is running.
    expect(await customers('Menards')).toEqual(['Dora Base', 'Zed Zimmer']);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered: () => void = () => undefined;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = tenantry.withTenant('Menards', (db) =>
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO customer (cust_num, name) VALUES (3, 'Tia Transit')");
        entered();
        await held;
      }),
    );
    await inside;
    const move = tenantry.tenants.setTablespace('Menards', AREA_B, { graceMs: 30_000 });
    // The move waits for the transaction, which then commits.
    setTimeout(release, 200);
    await transaction;
    const moved = await move;
    expect(moved.tablespace).toBe(AREA_B);
    expect(await databaseTablespace('Menards')).toBe(AREA_B);
    expect(await customers('Menards')).toEqual(['Dora Base', 'Tia Transit', 'Zed Zimmer']);
    expect(await customers('Menards', 'tenant')).toEqual(['Dora Base', 'Tia Transit', 'Zed Zimmer']);
    const { rows } = await tenantry.operator.query<{ allowed: boolean }>(
      'SELECT datallowconn AS allowed FROM pg_database WHERE datname = $1',
      [moved.databaseName],
    );
    expect(rows[0]?.allowed).toBe(true);
  });

  it('the CLI places and moves tenants: tenant create --tablespace, tenant set-tablespace', async () => {
    const created = await cli('tenant', 'create', 'Sears', '--isolation', 'schema', '--tablespace', AREA_A);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(AREA_A);
    expect((await tenantry.tenants.show('Sears')).tablespace).toBe(AREA_A);
    expect(new Set((await schemaTablespaces('Sears')).values())).toEqual(new Set([AREA_A]));
    const moved = await cli('tenant', 'set-tablespace', 'Sears', AREA_B, '--json');
    expect(moved.code, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({ name: 'Sears', tablespace: AREA_B });
    expect(new Set((await schemaTablespaces('Sears')).values())).toEqual(new Set([AREA_B]));
    const unknown = await cli('tenant', 'set-tablespace', 'Sears', 'no_such_area');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('TENANTRY_ERR_TABLESPACE_NOT_FOUND');
  });

  it('refuses shared tenants, unknown tablespaces and pg_global with stable codes', async () => {
    const shared = await tenantry.tenants.setTablespace('HomeDepot', AREA_A).catch((e: unknown) => e);
    expect(isTenantryError(shared, 'TABLESPACE_UNSUPPORTED')).toBe(true);
    expect(String(shared)).toMatch(/shared/);
    const sharedCreate = await tenantry.tenants
      .create({ name: 'Shared2', tablespace: AREA_A })
      .catch((e: unknown) => e);
    expect(isTenantryError(sharedCreate, 'TABLESPACE_UNSUPPORTED')).toBe(true);
    for (const attempt of [
      () => tenantry.tenants.setTablespace('Lowes', 'no_such_area'),
      () => tenantry.tenants.setTablespace('Menards', 'no_such_area'),
      () => tenantry.tenants.create({ name: 'Nowhere', isolation: 'schema', tablespace: 'no_such_area' }),
      () => tenantry.tenants.create({ name: 'Nowhere', isolation: 'database', tablespace: 'no_such_area' }),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(isTenantryError(error, 'TABLESPACE_NOT_FOUND'), String(error)).toBe(true);
    }
    expect((await tenantry.tenants.list()).map((t) => t.name)).not.toContain('Nowhere');
    const global = await tenantry.tenants.setTablespace('Lowes', 'pg_global').catch((e: unknown) => e);
    expect(isTenantryError(global, 'INVALID_ARGUMENT')).toBe(true);
    // A grace that is not a number of milliseconds (the CLI's `--grace 5s`) would never run out.
    for (const graceMs of [Number.NaN, Infinity, -1, 1.5]) {
      const bad = await tenantry.tenants
        .setTablespace('Menards', AREA_A, { graceMs })
        .catch((e: unknown) => e);
      expect(isTenantryError(bad, 'INVALID_ARGUMENT'), String(bad)).toBe(true);
    }
    // Nothing moved.
    expect(await databaseTablespace('Menards')).toBe(AREA_B);
    expect((await tenantry.tenants.show('Lowes')).tablespace).toBe('pg_default');
  });
});
