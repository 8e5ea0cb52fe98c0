import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobInfo, Tenantry } from '../../src/index.js';
import { eventually, runtimeFixture, type RuntimeFixture } from './helpers.js';

// The built CLI (`npm run build` first, as for cli.test.ts) against the fixture's database.
const bin = join(import.meta.dirname, '..', '..', 'bin', 'tenantry.js');
let f: RuntimeFixture;
let t: Tenantry;
let dataDir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--data-dir', dataDir, '--database-url', f.url, ...args], {
      env: { ...process.env, TENANTRY_MASTER_KEY: f.key, TENANTRY_LOG_LEVEL: 'silent' },
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
  f = await runtimeFixture('rt_cli', ['shared', 'schema']);
  t = f.tenantry;
  dataDir = mkdtempSync(join(tmpdir(), 'tenantry-jobs-cli-'));
  chmodSync(dataDir, 0o755);
});

afterAll(async () => {
  await f?.tenantry.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('tenantry jobs', () => {
  it('lists, cancels and retries jobs of one tenant or of all', async () => {
    const { homeDepot } = f.tenants.shared;
    const { lowes } = f.tenants.schema;
    const mail = await t.withTenant(homeDepot, () =>
      t.jobs.enqueue('mail', { to: 'alice' }, { delayMs: 3_600_000 }),
    );
    const report = await t.withTenant(lowes, () => t.jobs.enqueue('report', null, { delayMs: 3_600_000 }));

    const all = await cli('jobs', 'list', '--json');
    expect(all.code, all.stderr).toBe(0);
    const listed = JSON.parse(all.stdout) as JobInfo[];
    expect(listed.map((j) => [j.tenant, j.name, j.state])).toEqual(
      expect.arrayContaining([
        [homeDepot.name, 'mail', 'queued'],
        [lowes.name, 'report', 'queued'],
      ]),
    );
    const one = await cli('jobs', 'list', '--tenant', lowes.name);
    expect(one.stdout).toContain(report.id);
    expect(one.stdout).not.toContain(mail.id);
    expect(one.stdout).toContain('(1 row)');

    const wrongTenant = await cli('jobs', 'cancel', mail.id, '--tenant', lowes.name);
    expect(wrongTenant.code).toBe(1);
    expect(wrongTenant.stderr).toMatch(/^TENANTRY_ERR_JOB_NOT_FOUND: /);
    const cancelled = await cli('jobs', 'cancel', mail.id);
    expect([cancelled.code, cancelled.stdout.trim()]).toEqual([0, '1 job cancelled']);
    const retried = await cli('jobs', 'retry', '--tenant', homeDepot.name);
    expect([retried.code, retried.stdout.trim()]).toEqual([0, '1 job re-queued']);
    const queuedOnly = await cli('jobs', 'cancel', '--all-queued', '--tenant', lowes.name);
    expect(queuedOnly.stdout.trim()).toBe('1 job cancelled');
    expect((await t.jobs.list({ tenant: lowes.id })).map((j) => j.state)).toEqual(['cancelled']);

    const usage = await cli('jobs', 'cancel');
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/^TENANTRY_ERR_INVALID_ARGUMENT: /);
    const badState = await cli('jobs', 'list', '--state', 'sleeping');
    expect(badState.code).toBe(2);
  });

  it('`tenantry serve --workers N --jobs-module FILE` runs the jobs, and stops gracefully on SIGTERM', async () => {
    const module = join(dataDir, 'jobs.mjs');
    writeFileSync(
      module,
      `export default (tenantry) => tenantry.jobs.define('note', async (payload, ctx) => {
         await ctx.db.query('INSERT INTO note (id, body) VALUES ($1, $2)', [payload.id, 'from serve']);
       });\n`,
    );
    const server = spawn(
      process.execPath,
      [
        bin,
        '--data-dir',
        dataDir,
        '--database-url',
        f.url,
        'serve',
        '--no-gateway',
        '--no-http',
        '--workers',
        '2',
        '--jobs-module',
        module,
      ],
      { env: { ...process.env, TENANTRY_MASTER_KEY: f.key, TENANTRY_LOG_LEVEL: 'warn' } },
    );
    let output = '';
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => server.on('exit', resolve));
    try {
      await eventually(() => output.includes('tenantry ready'), 30_000, 'serve');
      expect(output).toContain('job workers: 2 at a time');
      const tenant = f.tenants.schema.homeDepot;
      await t.withTenant(tenant, () => t.jobs.enqueue('note', { id: 900 }));
      await eventually(
        async () =>
          (await t.withTenant(tenant, (db) => db.query('SELECT 1 FROM note WHERE id = 900'))).rowCount === 1,
        10_000,
        'the served worker to run the job',
      );
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
