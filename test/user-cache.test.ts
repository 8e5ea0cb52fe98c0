import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';

// Process A is a child Node process running the built library (`npm run build` first, as for
// cli.test.ts); process B is this test's own tenantry instance. A caches users; B changes them.
const library = pathToFileURL(join(import.meta.dirname, '..', 'dist', 'src', 'index.js')).href;
const CHILD = `
import { createInterface } from 'node:readline';
const { createTenantry } = await import(${JSON.stringify(library)});
const t = await createTenantry({
  databaseUrl: process.env.URL, masterKey: process.env.KEY, install: false, catalogPollMs: 600000,
});
const reply = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
reply({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  if (cmd.op === 'exit') break;
  try {
    let value;
    if (cmd.op === 'login') value = (await t.login(cmd.user, cmd.password)).length > 0;
    else if (cmd.op === 'principal') value = await t.withPrincipal(cmd.token, async (_db, p) => p.tenant.name);
    else if (cmd.op === 'stats') value = t.users.cacheStats();
    reply({ id: cmd.id, ok: true, value });
  } catch (e) {
    reply({ id: cmd.id, ok: false, code: e.code ?? String(e) });
  }
}
await t.close();
process.exit(0);
`;

interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  code?: string;
}

let b: Tenantry;
let child: ChildProcessWithoutNullStreams;
let stderr = '';
let nextId = 0;
const waiting = new Map<number, (answer: Answer) => void>();

/** Sends one command to process A and waits for its answer. */
function ask(command: Record<string, unknown>): Promise<Answer> {
  const id = ++nextId;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    child.stdin.write(`${JSON.stringify({ ...command, id })}\n`);
  });
}

/** The outcome of a command in A: `ok` or the error code. */
async function outcome(command: Record<string, unknown>): Promise<string> {
  const answer = await ask(command);
  return answer.ok ? 'ok' : String(answer.code);
}

/** Polls A until `command` has `expected` as outcome; fails after 1 s (the deadline). */
async function within1s(command: Record<string, unknown>, expected: string): Promise<void> {
  const start = Date.now();
  let last = '';
  while (Date.now() - start <= 1000) {
    last = await outcome(command);
    if (last === expected) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`process A still answers ${last} for ${JSON.stringify(command)} after 1 s`);
}

beforeAll(async () => {
  const url = await createTestDatabase('user_cache');
  const key = generateMasterKey();
  b = await createTenantry({ databaseUrl: url, masterKey: key });
  await b.tenants.create({ name: 'HomeDepot' });
  await b.domains.add('HomeDepot', { tenant: 'HomeDepot' });
  await b.users.add('alice@HomeDepot', { password: 'alice-pw' });
  child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
    env: { ...process.env, URL: url, KEY: key },
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`process A exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer & { ready?: boolean };
      if (answer.ready) resolve();
      else waiting.get(answer.id)?.(answer);
    });
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.stdin.write('{"op":"exit"}\n');
    const timer = setTimeout(() => child.kill(), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await b?.close();
});

describe('the user → tenant mapping is cached and NOTIFY-invalidated across processes', () => {
  const alice = { op: 'login', user: 'alice@HomeDepot', password: 'alice-pw' };

  it('serves repeated lookups from memory', async () => {
    expect(await outcome(alice)).toBe('ok');
    expect(await outcome(alice)).toBe('ok');
    const stats = (await ask({ op: 'stats' })).value as { hits: number; users: number };
    expect(stats.users).toBeGreaterThanOrEqual(1);
    expect(stats.hits).toBeGreaterThanOrEqual(1);
  });

  it('a user removed by process B is refused by process A within 1 s: login, principal and delegation', async () => {
    const principal = await b.login('alice@HomeDepot', 'alice-pw');
    const { token } = await b.tokens.issue({ user: 'alice@HomeDepot', service: 'svc' });
    for (const command of [alice, { op: 'principal', token: principal }, { op: 'principal', token }]) {
      expect(await outcome(command)).toBe('ok');
    }
    await b.users.remove('alice@HomeDepot');
    await within1s(alice, 'TENANTRY_ERR_AUTH');
    await within1s({ op: 'principal', token: principal }, 'TENANTRY_ERR_AUTH');
    await within1s({ op: 'principal', token }, 'TENANTRY_ERR_AUTH');
  });

  it('an unknown user is cached as unknown, and resolves within 1 s once process B adds it', async () => {
    const ghost = { op: 'login', user: 'ghost@HomeDepot', password: 'ghost-pw' };
    expect(await outcome(ghost)).toBe('TENANTRY_ERR_AUTH');
    const before = (await ask({ op: 'stats' })).value as { unknown: number };
    expect(before.unknown).toBeGreaterThanOrEqual(1);
    await b.users.add('ghost@HomeDepot', { password: 'ghost-pw' });
    await within1s(ghost, 'ok');
    await b.users.add('alice@HomeDepot', { password: 'alice-pw' });
    await within1s(alice, 'ok');
  });

  it('a tenant disabled by process B refuses process A’s logins and principals within 1 s', async () => {
    const principal = await b.login('alice@HomeDepot', 'alice-pw');
    expect(await outcome({ op: 'principal', token: principal })).toBe('ok');
    expect(await outcome(alice)).toBe('ok');
    await b.tenants.disable('HomeDepot');
    try {
      await within1s(alice, 'TENANTRY_ERR_TENANT_DISABLED');
      await within1s({ op: 'principal', token: principal }, 'TENANTRY_ERR_TENANT_DISABLED');
    } finally {
      await b.tenants.enable('HomeDepot');
    }
    await within1s(alice, 'ok');
  });
});
