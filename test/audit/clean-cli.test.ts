import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/demo/index.js';
import {
  audit,
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type AuditReport,
  type Tenantry,
} from '../../src/index.js';
import { createTestDatabase, serverUrl, withClient } from '../helpers/db.js';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'tenantry.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`npm run build` first, as `npm test` does). */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, TENANTRY_DATABASE_URL: '', TENANTRY_LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let url: string;
let tenantry: Tenantry;

beforeAll(async () => {
  url = await createTestDatabase('audit_clean');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await seedDemo(tenantry);
  // every placement, login roles of every permission, a tenant view, column and index
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' }).catch(() => undefined);
  await tenantry.tenants.create({ name: 'Globex', isolation: 'database' }).catch(() => undefined);
  for (const name of ['HomeDepot', 'Lowes', 'LowesBos']) await tenantry.prepareLoginRole(name);
  await tenantry.tenants.ensurePermissionRole('HomeDepot', 'read');
  await tenantry.tenants.ensurePermissionRole('HomeDepot', 'write');
  await tenantry.withTenant('HomeDepot', async (db) => {
    await db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['loyalty'])");
    await db.query("CREATE VIEW ga_customers AS SELECT name FROM customer WHERE state = 'GA'");
  });
  await tenantry.withTenant(
    'Lowes',
    (db) => db.query('CREATE TABLE notes (id integer PRIMARY KEY, body text)'),
    {
      identity: 'tenant',
    },
  );
  await tenantry.sequences.create('ticket', { shared: true });
});
afterAll(async () => {
  await tenantry?.close();
});

describe('a clean tenantry database', () => {
  it('has no high-severity finding (demo, schema and database tenants, tenants’ own objects)', async () => {
    const report = await audit(url);
    expect(report.findings.filter((f) => f.severity === 'high')).toEqual([]);
    expect(report.summary.high).toBe(0);
    expect(report.database).toBe(new URL(url).pathname.slice(1));
  });

  it('audits through a pool or a connected client alike, and only reads', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const strip = (r: AuditReport) => r.findings;
      expect(strip(await audit(pool))).toEqual(strip(await audit(client)));
      expect(client.getTransactionStatus?.()).toBe('I');
    } finally {
      await client.end();
      await pool.end();
    }
  });

  it('refuses a database without tenantry, and an unreachable one, with tenantry’s codes', async () => {
    const bare = await createTestDatabase('audit_bare');
    const notInstalled = await audit(bare).catch((e: unknown) => e);
    expect(isTenantryError(notInstalled, 'CATALOG_NOT_INSTALLED')).toBe(true);
    const parsed = new URL(serverUrl());
    parsed.port = '1';
    const unreachable = await audit(parsed.toString()).catch((e: unknown) => e);
    expect(isTenantryError(unreachable, 'DATABASE_UNREACHABLE')).toBe(true);
    expect(String((unreachable as Error).message)).not.toContain(parsed.password);
  });
});

describe('tenantry audit (the CLI)', () => {
  beforeAll(() => {
    if (!existsSync(join(root, 'dist', 'src', 'cli', 'commands', 'audit.js'))) {
      throw new Error('dist has no audit command: run `npm run build` first (npm test does)');
    }
  });

  it('exits 0 on a clean database; --json prints only the JSON report', async () => {
    const text = await cli('audit', '--database-url', url);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/0 high/);
    const json = await cli('--database-url', url, 'audit', '--json');
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe('');
    const report = JSON.parse(json.stdout) as AuditReport;
    expect(report.summary.high).toBe(0);
    expect(json.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('exits 1 on a high-severity hazard, naming it and its fix; --json keeps stdout pure JSON', async () => {
    const hazard = url;
    await withClient(hazard, (c) => c.query('ALTER TABLE public.customer NO FORCE ROW LEVEL SECURITY'));
    try {
      const text = await cli('audit', '--database-url', hazard);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/HIGH\s+rls-not-forced\s+public\.customer/);
      expect(text.stdout).toContain('fix: ALTER TABLE public.customer FORCE ROW LEVEL SECURITY;');
      expect(text.stderr.trim()).toMatch(/^TENANTRY_ERR_AUDIT_HAZARDS: 1 high-severity/);
      const json = await cli('audit', '--database-url', hazard, '--json');
      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout) as AuditReport;
      expect(report.findings).toContainEqual(
        expect.objectContaining({ check: 'rls-not-forced', severity: 'high', object: 'public.customer' }),
      );
      expect(json.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await withClient(hazard, (c) => c.query('ALTER TABLE public.customer FORCE ROW LEVEL SECURITY'));
    }
  });

  it('exits 1 with tenantry’s error line when the database cannot be audited; 2 on bad usage', async () => {
    const bare = await createTestDatabase('audit_cli_bare');
    const run = await cli('audit', '--database-url', bare, '--json');
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^TENANTRY_ERR_CATALOG_NOT_INSTALLED: /);
    expect((await cli('audit', '--no-such-flag')).code).toBe(2);
  });
});
