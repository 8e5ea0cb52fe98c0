import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, type Tenantry } from '../src/index.js';

const bin = join(import.meta.dirname, '..', 'bin', 'tenantry.js');
let dataDir: string;
let server: ChildProcess;
let serverOutput = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI against the test's own `tenantry serve`. */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--data-dir', dataDir, ...args], {
      env: { ...process.env, TENANTRY_DATABASE_URL: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tenantry-cli-'));
  chmodSync(dataDir, 0o755);
  server = spawn(process.execPath, [bin, 'serve', '--demo', '--data-dir', dataDir, '--embedded-port', '0'], {
    env: { ...process.env, TENANTRY_DATABASE_URL: '', TENANTRY_LOG_LEVEL: 'warn' },
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not get ready:\n${serverOutput}`)), 60_000);
    const onData = (chunk: Buffer) => {
      serverOutput += chunk.toString();
      if (serverOutput.includes('tenantry ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout?.on('data', onData);
    server.stderr?.on('data', onData);
    server.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${serverOutput}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.on('exit', resolve));
    server.kill('SIGINT');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the tenantry CLI against its own embedded server', () => {
  it('serve --demo says it is ready and where it listens', () => {
    expect(serverOutput).toMatch(/demo data installed: tenants HomeDepot, Lowes, LowesNY, LowesBos, ops/);
    expect(serverOutput).toMatch(/tenantry ready: embedded PostgreSQL at 127\.0\.0\.1:\d+/);
  });

  it('sql --tenant prints exactly that tenant’s customers', async () => {
    const home = await cli('sql', '--tenant', 'HomeDepot', 'select name from customer order by 1');
    expect(home.code).toBe(0);
    const names = (run: Run) =>
      run.stdout
        .split('\n')
        .slice(2, -2)
        .map((l) => l.trim());
    expect(names(home)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    const lowes = await cli('sql', '--tenant', 'Lowes', 'select name from customer order by 1');
    expect(names(lowes)).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
  });

  it('the demo has seed 004’s LowesItm group over item and per-tenant custNum numbering', async () => {
    const items = async (tenant: string) =>
      (
        JSON.parse(
          (await cli('sql', '--tenant', tenant, '--json', 'select item_num from item order by 1')).stdout,
        ) as {
          item_num: number;
        }[]
      ).map((r) => r.item_num);
    expect(await items('LowesNY')).toEqual([1, 3, 4, 7, 8, 9]);
    expect(await items('LowesBos')).toEqual([1, 3, 4, 7, 8, 9]);
    expect(await items('HomeDepot')).toEqual([2, 5, 6]);
    expect(await items('Lowes')).toEqual([]);
    const nums = JSON.parse(
      (await cli('sql', '--tenant', 'Lowes', '--json', 'select cust_num::int as n from customer order by 1'))
        .stdout,
    ) as { n: number }[];
    expect(nums.map((r) => r.n)).toEqual([1, 2, 3]);
    const view = JSON.parse(
      (await cli('sql', '--tenant', 'Lowes', '--json', 'select name from ma_customers')).stdout,
    ) as unknown;
    expect(view).toEqual([{ name: 'George Holmes' }]);
    const loyalty = JSON.parse(
      (
        await cli(
          'sql',
          '--tenant',
          'HomeDepot',
          '--json',
          'select name, loyalty from customer where loyalty is not null',
        )
      ).stdout,
    ) as unknown;
    expect(loyalty).toEqual([{ name: 'Albert Hall', loyalty: 3 }]);
    const groups = JSON.parse((await cli('group', 'list', '--json')).stdout) as {
      name: string;
      members: string[];
    }[];
    expect(groups).toEqual([expect.objectContaining({ name: 'LowesItm', members: ['LowesBos', 'LowesNY'] })]);
  });

  it('scan runs a TENANT-WHERE scan across the demo tenants', async () => {
    const run = await cli(
      'scan',
      '--tenant-where',
      "id > 0 and name < 'M'",
      '--order-by',
      'name',
      '--json',
      'select name from customer',
    );
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as { name: string; _tenant_name: string }[];
    expect(rows.map((r) => r.name)).toEqual([...rows.map((r) => r.name)].sort());
    expect(new Set(rows.map((r) => r._tenant_name))).toEqual(
      new Set(['HomeDepot', 'Lowes', 'LowesNY', 'LowesBos']),
    );
    const items = JSON.parse(
      (await cli('scan', '--skip-group-duplicates', '--json', 'select item_num from item')).stdout,
    ) as unknown[];
    expect(items).toHaveLength(9);
  });

  it('token delegate prints the token alone on stdout, and token revoke refuses it afterwards', async () => {
    const issued = await cli('token', 'delegate', '--user', 'alice@HomeDepot', '--ttl', '15m');
    expect(issued.code).toBe(0);
    expect(issued.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const id = /token id ([0-9a-f-]{36})/.exec(issued.stderr)?.[1];
    expect(id).toBeDefined();
    expect((await cli('token', 'revoke', id!)).code).toBe(0);
  });

  it('sql --json prints one JSON array and nothing else, integers as numbers and bigint/numeric as strings', async () => {
    const run = await cli(
      'sql',
      '--tenant',
      'HomeDepot',
      'select cust_num::int as cust_num, name, 10000000000::bigint as big, 2.50::numeric as price from customer order by 1',
      '--json',
    );
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as unknown[];
    expect(rows).toEqual([
      { cust_num: 1, name: 'Albert Hall', big: '10000000000', price: '2.50' },
      { cust_num: 2, name: 'Candace Jones', big: '10000000000', price: '2.50' },
      { cust_num: 3, name: 'Carrie Abrahm', big: '10000000000', price: '2.50' },
    ]);
  });

  it('a disabled tenant exits 1 with TENANTRY_ERR_TENANT_DISABLED, and another process sees it within 1 s', async () => {
    const info = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as { url: string };
    const watcher: Tenantry = await createTenantry({ databaseUrl: info.url, catalogPollMs: 600_000 });
    try {
      expect(watcher.catalog.get('Lowes')?.state).toBe('active');
      const disabled = await cli('tenant', 'disable', 'Lowes');
      const after = Date.now();
      expect(disabled.code).toBe(0);
      while (watcher.catalog.get('Lowes')?.state !== 'disabled' && Date.now() - after < 1000) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(watcher.catalog.get('Lowes')?.state).toBe('disabled');
      const refused = await cli('sql', '--tenant', 'Lowes', 'select name from customer');
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(/^TENANTRY_ERR_TENANT_DISABLED: Tenant Lowes is disabled/);
      expect((await cli('tenant', 'enable', 'Lowes')).code).toBe(0);
      expect((await cli('sql', '--tenant', 'Lowes', 'select 1')).code).toBe(0);
    } finally {
      await watcher.close();
    }
  });

  it('manages tenants and tables end to end', async () => {
    const created = await cli('tenant', 'create', 'Acme', '--json');
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'Acme', kind: 'regular', state: 'active' });
    const list = JSON.parse((await cli('tenant', 'list', '--json')).stdout) as { name: string }[];
    expect(list.map((t) => t.name)).toEqual([
      'ops',
      'Default',
      'HomeDepot',
      'Lowes',
      'LowesNY',
      'LowesBos',
      'Acme',
    ]);
    expect((await cli('tenant', 'lock', 'Acme')).code).toBe(0);
    const locked = await cli('sql', '--tenant', 'Acme', 'select 1');
    expect(locked.stderr).toMatch(/^TENANTRY_ERR_TENANT_LOCKED/);
    expect((await cli('tenant', 'unlock', 'Acme')).code).toBe(0);
    const noForce = await cli('tenant', 'drop', 'Acme');
    expect(noForce.code).toBe(1);
    expect(noForce.stderr).toMatch(/^TENANTRY_ERR_FORCE_REQUIRED/);
    expect((await cli('tenant', 'drop', 'Acme', '--force')).code).toBe(0);
    expect((await cli('tenant', 'show', 'Acme')).stderr).toMatch(/^TENANTRY_ERR_TENANT_NOT_FOUND/);
    const tables = JSON.parse((await cli('table', 'list', '--json')).stdout) as {
      table: string;
      kind: string;
    }[];
    expect(tables.map((t) => `${t.kind}:${t.table}`)).toEqual([
      'multi_tenant:customer',
      'multi_tenant:item',
      'multi_tenant:order',
      'shared:state',
      'multi_tenant:users',
    ]);
    const shape = await cli('table', 'multi-tenant', 'public.state');
    expect(shape.code).toBe(1);
    expect(shape.stderr).toMatch(
      /^TENANTRY_ERR_TABLE_SHAPE: public\.state: the tenant column tenant_id must exist/,
    );
  });

  it('creates schema tenants with their own role, and rotates the generated master key', async () => {
    const keyFile = join(dataDir, 'master.key');
    expect(serverOutput).toMatch(/warning: generated a master key in .*master\.key/);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const created = JSON.parse(
      (await cli('tenant', 'create', 'Globex', '--isolation', 'schema', '--json')).stdout,
    ) as {
      isolation: string;
      role: string;
      schemaName: string;
    };
    expect(created).toMatchObject({
      isolation: 'schema',
      role: expect.stringMatching(/^tenantry_t_/) as unknown,
    });
    const sql = (identity: string) =>
      cli(
        'sql',
        '--tenant',
        'Globex',
        '--identity',
        identity,
        '--json',
        "INSERT INTO customer (cust_num, name) VALUES (1, 'Gina Globex') ON CONFLICT DO NOTHING; SELECT name, current_user = tenantry.tenant_name() AS odd FROM customer",
      );
    const asRole = await sql('tenant');
    expect(asRole.code).toBe(0);
    expect(JSON.parse(asRole.stdout)).toEqual([{ name: 'Gina Globex', odd: false }]);
    const before = readFileSync(keyFile, 'utf8');
    const rotated = await cli('rotate-key');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/^resealed [1-9]\d* credentials with key [0-9a-f]{8}/);
    const after = readFileSync(keyFile, 'utf8');
    expect(after).not.toBe(before);
    expect(after.trim()).not.toContain(',');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(JSON.parse((await sql('tenant')).stdout)).toEqual([{ name: 'Gina Globex', odd: false }]);
    // Homedepot sees none of Globex's rows
    const home = await cli(
      'sql',
      '--tenant',
      'HomeDepot',
      '--json',
      "SELECT count(*)::int AS n FROM customer WHERE name = 'Gina Globex'",
    );
    expect(JSON.parse(home.stdout)).toEqual([{ n: 0 }]);
  });

  it('exits 2 on usage errors and 0 on --help for every command', async () => {
    expect((await cli('sql', 'select 1')).code).toBe(2);
    expect((await cli('no-such-command')).code).toBe(2);
    expect((await cli('tenant', 'create', 'X', '--kind', 'weird')).code).toBe(2);
    // checked before anything starts (the test's own serve keeps the data dir's server)
    const badPool = await cli('serve', '--shared-pool-max', '0');
    expect(badPool.code).not.toBe(0);
    expect(badPool.stderr).toMatch(/TENANTRY_ERR_CONFIG: .*--shared-pool-max must be a whole number/);
    for (const args of [
      [],
      ['serve'],
      ['tenant'],
      ['tenant', 'create'],
      ['tenant', 'allocate'],
      ['table'],
      ['sql'],
      ['server'],
      ['group'],
      ['sequence'],
      ['migrate-default'],
      ['rotate-key'],
      ['scan'],
      ['domain'],
      ['user'],
      ['principal'],
      ['token'],
    ]) {
      const help = await cli(...args, '--help');
      expect(help.code, args.join(' ')).toBe(0);
      expect(help.stdout).toMatch(/Usage: tenantry/);
    }
  });

  it('reports a clear error when no server runs for the data dir', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'tenantry-none-'));
    try {
      const run = await new Promise<Run>((resolve) => {
        const child = spawn(process.execPath, [bin, '--data-dir', empty, 'tenant', 'list'], {
          env: { ...process.env, TENANTRY_DATABASE_URL: '' },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^TENANTRY_ERR_NO_SERVER: No database to talk to/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
