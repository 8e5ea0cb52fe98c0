import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ProgressView } from '../../src/index.js';
import { fleetFixture, type FleetFixture } from './helpers.js';

let f: FleetFixture;

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

beforeAll(async () => {
  f = await fleetFixture('fleet_cli', { schema: 3 });
  f.write(1, 'email', 'ALTER TABLE customer ADD COLUMN email text;');
}, 300_000);
afterAll(async () => {
  await f?.close();
});

/** Runs the CLI in this process; answers the exit code and what it wrote. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = vi
    .spyOn(process.stderr, 'write')
    .mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    const code = await main(['node', 'tenantry', '--database-url', f.url, ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('tenantry migrate (CLI)', () => {
  it('--dry-run prints the plan and exits 0', async () => {
    const run = await cli('migrate', '--dir', f.dir, '--dry-run');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('dry run: nothing changed');
    expect(run.stdout).toContain('shared: 0 → 1');
    expect(run.stdout).toContain('tenant S02 (schema): 0 → 1');
    expect(await f.sql('SELECT 1 FROM tenantry.app_migration')).toEqual([]);
  });

  it('migrates with plain progress lines off a terminal, and reports', async () => {
    const run = await cli('migrate', '--dir', f.dir, '--concurrency', '2');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('shared: 0 → 1 (applied 1)');
    expect(run.stdout).toContain('tenants: 3 behind, 3 migrated, 0 failed');
    expect(run.stderr).toContain('tenants: 3/3 (0 failed)');
    expect(run.stderr).not.toContain('\r');
  });

  it('status lists every tenant with its version (also as JSON)', async () => {
    const text = await cli('migrate', 'status', '--dir', f.dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('shared tables: version 1 (1 applied)');
    expect(text.stdout).toMatch(/S03 .*\| 1 .*current/);
    const json = await cli('migrate', 'status', '--json');
    const status = JSON.parse(json.stdout) as {
      current: number;
      tenants: { name: string; version: number }[];
    };
    expect(status.current).toBe(1);
    expect(status.tenants.map((t) => [t.name, t.version]).sort()).toEqual([
      ['S01', 1],
      ['S02', 1],
      ['S03', 1],
    ]);
  });

  it('exits 1 with TENANTRY_ERR_MIGRATION_FAILED naming the failed tenant, 2 on bad usage', async () => {
    const [s02] = await f.sql<{ schema_name: string }>(
      "SELECT schema_name FROM tenantry.tenant WHERE name = 'S02'",
    );
    await f.sql(`CREATE TABLE ${s02!.schema_name}.audit (id int)`);
    f.write(2, 'audit', 'CREATE TABLE audit (id int);\n-- tenantry:shared\nDROP TABLE audit;');
    const run = await cli('migrate', '--dir', f.dir);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('tenants: 3 behind, 2 migrated, 1 failed');
    expect(run.stderr).toMatch(
      /TENANTRY_ERR_MIGRATION_FAILED: 1 target\(s\) failed to migrate \(tenant S02 \(schema\) at version 2: 42P07/,
    );
    expect((await cli('migrate', '--dir', f.dir, '--concurrency', '0')).stderr).toContain(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect((await cli('migrate', '--dir', '/nonexistent/dir')).stderr).toContain('is not a directory');
    expect((await cli('migrate', '--bogus')).code).toBe(2);
  });

  it('a command that reports its own failure exits with its code, not 0; the next command is not affected', async () => {
    const noTarget = await cli('tenant', 'move', 'S02');
    expect(noTarget.code).toBe(1);
    expect(noTarget.stderr).toContain('say where to');
    expect((await cli('migrate', '--dir', f.dir, '--dry-run')).code).toBe(0);
  });
});

describe('the progress view', () => {
  it('draws one bar on a terminal and ten lines elsewhere', () => {
    let tty = '';
    let plain = '';
    const bar = new ProgressView((t) => (tty += t), true, 60);
    const lines = new ProgressView((t) => (plain += t), false);
    for (let done = 0; done <= 100; done++) {
      const event = { phase: 'tenants' as const, done, failed: done > 50 ? 1 : 0, total: 100 };
      bar.update(event);
      lines.update(event);
    }
    lines.update({
      phase: 'tenants',
      done: 100,
      failed: 1,
      total: 100,
      target: 'tenant X (schema)',
      error: 'boom',
    });
    bar.finish();
    expect(tty).toContain('\r');
    expect(tty).toContain('100/100 ✗1');
    expect(plain.trim().split('\n')).toHaveLength(12);
    expect(plain).toContain('✗ tenant X (schema): boom');
  });
});
