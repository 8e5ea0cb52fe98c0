import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tenantry } from '../../src/index.js';
import { checksumsOf, fillTenant, transferFixture } from './transfer-helpers.js';

// `tenantry tenant export` / `import` through the built CLI (bin/tenantry.js; `npm test` builds).

const bin = join(import.meta.dirname, '..', '..', 'bin', 'tenantry.js');
let tenantry: Tenantry;
let url: string;
let masterKey: string;
const dir = mkdtempSync(join(tmpdir(), 'tenantry-transfer-cli-'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; `onStderr` may act on what it prints (e.g. send it SIGINT). */
function cli(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--database-url', url, ...args], {
      env: { ...process.env, TENANTRY_DATABASE_URL: '', TENANTRY_MASTER_KEY: masterKey },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', () => clearTimeout(timer));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  ({ url, tenantry, masterKey } = await transferFixture('transfer_cli'));
  await tenantry.tenants.create({ name: 'HomeDepot' });
  await fillTenant(tenantry, 'HomeDepot', 3000);
}, 300_000);
afterAll(async () => {
  await tenantry?.close();
  rmSync(dir, { recursive: true, force: true });
});

const names = async () => (await tenantry.tenants.list()).map((t) => t.name).sort();

describe('tenantry tenant export / import (CLI)', () => {
  it('round-trips a tenant into another isolation model with plain progress lines off a terminal', async () => {
    const file = join(dir, 'homedepot.tenant.gz');
    const exported = await cli(['tenant', 'export', 'HomeDepot', '-o', file]);
    expect(exported.stderr).not.toContain('\r');
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(
      /exported tenant HomeDepot \(shared\): 3040 rows in 2 tables, \d+ objects/,
    );
    expect(exported.stderr).toContain('rows: 3040/3040 (100%)');
    expect(readdirSync(dir)).toEqual(['homedepot.tenant.gz']);
    const imported = await cli(['tenant', 'import', file, '--as', 'HomeDepotCopy', '--isolation', 'schema']);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain(
      'imported tenant HomeDepotCopy (schema on main): 3040 rows in 2 tables',
    );
    await tenantry.catalog.reload();
    expect(await checksumsOf(tenantry, 'HomeDepotCopy')).toEqual(await checksumsOf(tenantry, 'HomeDepot'));
    const again = await cli(['tenant', 'import', file, '--as', 'HomeDepotCopy']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TENANTRY_ERR_TENANT_EXISTS');
  });

  it('errors exit 1 with their code and leave no partial file', async () => {
    const missing = await cli(['tenant', 'export', 'Nobody', '-o', join(dir, 'nobody.gz')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('TENANTRY_ERR_TENANT_NOT_FOUND');
    expect(existsSync(join(dir, 'nobody.gz.partial'))).toBe(false);
    expect((await cli(['tenant', 'import', join(dir, 'homedepot.tenant.gz')])).code).toBe(2);
  });

  it('Ctrl-C during an import stops it and leaves no tenant behind', async () => {
    const before = await names();
    let sent = false;
    const run = await cli(
      [
        'tenant',
        'import',
        join(dir, 'homedepot.tenant.gz'),
        '--as',
        'Halfway',
        '--isolation',
        'database',
        '--batch-size',
        '1',
      ],
      (text, child) => {
        if (!sent && text.includes('rows: ')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    );
    expect(sent).toBe(true);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('TENANTRY_ERR_TRANSFER_INTERRUPTED');
    expect(await names()).toEqual(before);
  });
});
