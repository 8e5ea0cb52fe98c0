import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// `tenantry scan --as USER`: the built CLI (`npm run build` first) against its own `serve --demo`.
const bin = join(import.meta.dirname, '..', 'bin', 'tenantry.js');
let dataDir: string;
let server: ChildProcess;
let serverOutput = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `stdin` piped in and `env` added. */
function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, '--data-dir', dataDir, ...args], {
      env: { ...process.env, TENANTRY_DATABASE_URL: '', TENANTRY_PASSWORD: '', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tenantry-cli-scan-'));
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

describe('tenantry scan --as a super tenant’s user', () => {
  const scan = ['scan', '--tenant-where', "id > 0 and name < 'M'", '--order-by', 'name', '--json'];

  it('scans as root@ops with the password from stdin, the same rows as the operator', async () => {
    const asRoot = await cli([...scan, '--as', 'root@ops', '--password-stdin', 'select name from customer'], {
      stdin: 'demo\n',
    });
    expect(asRoot.stderr).toBe('');
    expect(asRoot.code).toBe(0);
    const rows = JSON.parse(asRoot.stdout) as { name: string; _tenant_name: string }[];
    expect(rows.map((r) => r.name)).toEqual([...rows.map((r) => r.name)].sort());
    expect(new Set(rows.map((r) => r._tenant_name))).toEqual(
      new Set(['HomeDepot', 'Lowes', 'LowesNY', 'LowesBos']),
    );
    const asOperator = await cli([...scan, 'select name from customer']);
    expect(JSON.parse(asOperator.stdout)).toEqual(rows);
  });

  it('takes the password from TENANTRY_PASSWORD', async () => {
    const run = await cli(['scan', '--json', '--as', 'root@ops', 'select count(*)::int AS n from customer'], {
      env: { TENANTRY_PASSWORD: 'demo' },
    });
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as unknown[]).length).toBe(4);
  });

  it('refuses a regular tenant’s user with TENANTRY_ERR_FORBIDDEN, a wrong password with TENANTRY_ERR_AUTH', async () => {
    const alice = await cli([...scan, '--as', 'alice@HomeDepot', '--password-stdin', 'select 1'], {
      stdin: 'demo',
    });
    expect(alice.code).toBe(1);
    expect(alice.stdout).toBe('');
    expect(alice.stderr).toMatch(/^TENANTRY_ERR_FORBIDDEN: Only a super tenant/);
    const wrong = await cli([...scan, '--as', 'root@ops', '--password-stdin', 'select 1'], { stdin: 'nope' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^TENANTRY_ERR_AUTH/);
    const none = await cli([...scan, '--as', 'root@ops', 'select 1']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /^TENANTRY_ERR_INVALID_ARGUMENT: .*--password-stdin or set TENANTRY_PASSWORD/,
    );
  });
});
