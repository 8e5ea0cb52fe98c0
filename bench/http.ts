/**
 * http: seed 002's `GET /v1/internal/users` over many tenants, each request for a random tenant
 * with that tenant's own delegation token (checked on every request, revocation included).
 *
 * 1,000 shared tenants (quick: 200), two rows each in seed 002's `users` table; the HTTP API in a
 * child process; autocannon with 64 connections for 20 s (quick: 5 s) after a 3 s warm-up. Every
 * response is checked against its tenant (a leak oracle: each row names its tenant); non-2xx,
 * errors, timeouts and leaks all count as errors. Baseline: seed 002's published 98 req/s (its
 * pool-per-tenant Rust service on 1 vCPU / 512 MB); this machine has 2 cores and 24 GB, shared
 * by the server, PostgreSQL and the load generator. Goal: ≥ 5,000 req/s with 0 errors.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { colocatedPoolMax, createTenantry, generateMasterKey } from '../src/index.js';
import { processSched } from './gateway-tools.js';
import { openDatabase, parseArgs, round } from './harness.js';
import { forEachLimited, printJsonLine } from './load.js';

const BENCH = 'http';
const SEED_002_RPS = 98;
const GOAL = 5_000;
const ADMIN = 'bench-admin-token-0123456789abcdef';

interface TenantToken {
  readonly name: string;
  readonly token: string;
}

async function setUp(url: string, masterKey: string, count: number): Promise<TenantToken[]> {
  const tenantry = await createTenantry({ databaseUrl: url, masterKey });
  try {
    await tenantry.operator.query(`CREATE TABLE users (
      tenant_id integer NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), name text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id))`);
    await tenantry.tables.multiTenant('public.users');
    const tokens: TenantToken[] = [];
    const names = Array.from({ length: count }, (_, i) => `t${String(i).padStart(4, '0')}`);
    await forEachLimited(names, 8, async (name) => {
      await tenantry.tenants.create({ name });
      await tenantry.withTenant(name, (db) =>
        db.query('INSERT INTO users (name) VALUES ($1), ($2)', [`${name}-a`, `${name}-b`]),
      );
      // An external sign-on domain: its users need no password here; a service acts for them.
      await tenantry.domains.add(name, { tenant: name, authSystem: 'external' });
      await tenantry.users.add(`svc@${name}`, { permission: 'read' });
      const { token } = await tenantry.tokens.issue({
        user: `svc@${name}`,
        service: 'bench',
        ttlSeconds: 3600,
      });
      tokens.push({ name, token });
    });
    return tokens;
  } finally {
    await tenantry.close();
  }
}

async function startServer(
  url: string,
  masterKey: string,
  sharedPoolMax: number | undefined,
): Promise<{ port: number; pid: number | undefined; stop: () => Promise<void> }> {
  // TENANTRY_BENCH_CPU_PROF=DIR: profile the server process (node --cpu-prof) into DIR.
  const profile = process.env.TENANTRY_BENCH_CPU_PROF;
  const flags = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...flags, new URL('./http-server.js', import.meta.url).pathname], {
    env: {
      ...process.env,
      TENANTRY_BENCH_URL: url,
      TENANTRY_MASTER_KEY: masterKey,
      TENANTRY_ADMIN_TOKEN: ADMIN,
      TENANTRY_BENCH_SHARED_POOL_MAX: sharedPoolMax === undefined ? '' : String(sharedPoolMax),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, 'line')) as [string];
  const { port } = JSON.parse(line) as { port: number };
  return {
    port,
    pid: child.pid,
    stop: async () => {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

interface Load {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly leaks: number;
  readonly total: number;
}

async function load(port: number, tokens: readonly TenantToken[], seconds: number): Promise<Load> {
  let leaks = 0;
  let cursor = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: 64,
    duration: seconds,
    requests: [
      {
        method: 'GET',
        path: '/v1/internal/users',
        setupRequest: (request: Record<string, unknown>, context: Record<string, unknown>) => {
          // A fixed pseudo-random walk over the tenants (Weyl sequence), the same every run.
          cursor = (cursor + 7919) % tokens.length;
          const pick = tokens[cursor] as TenantToken;
          context.tenant = pick.name;
          return { ...request, headers: { authorization: `Bearer ${pick.token}`, 'x-tenant-id': pick.name } };
        },
        onResponse: (status: number, body: string, context: Record<string, unknown>) => {
          if (status !== 200) return;
          const rows = JSON.parse(body) as { name: string }[];
          if (rows.length !== 2 || rows.some((r) => !r.name.startsWith(`${String(context.tenant)}-`)))
            leaks++;
        },
      },
    ],
  } as unknown as autocannon.Options);
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx + leaks,
    leaks,
    total: result.requests.total,
  };
}

/** `npm run bench -- http [--quick]`. */
export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const count = args.quick ? 200 : 1_000;
  const seconds = args.quick ? 5 : 20;
  const db = await openDatabase(BENCH);
  try {
    const masterKey = generateMasterKey();
    const started = Date.now();
    const tokens = await setUp(db.url, masterKey, count);
    console.log(
      `${BENCH}: ${count} tenants with tokens set up in ${round((Date.now() - started) / 1000, 1)} s (${db.where})`,
    );
    // The application role's pool as `tenantry serve` sets it: 4 per CPU on its embedded
    // PostgreSQL (the bench's own server); TENANTRY_BENCH_SHARED_POOL_MAX overrides ('' for none).
    const asked = process.env.TENANTRY_BENCH_SHARED_POOL_MAX;
    const sharedPoolMax =
      asked !== undefined
        ? Number(asked) || undefined
        : process.env.TENANTRY_BENCH_DATABASE_URL
          ? undefined
          : colocatedPoolMax();
    console.log(
      `${BENCH}: application-role pool capped at ${sharedPoolMax ?? 'the budget (no cap of its own)'}` +
        (sharedPoolMax === undefined ? '' : ' connections (as tenantry serve on its embedded PostgreSQL)'),
    );
    const server = await startServer(db.url, masterKey, sharedPoolMax);
    try {
      await load(server.port, tokens, 3);
      const before = processSched(server.pid);
      const ours = await load(server.port, tokens, seconds);
      const after = processSched(server.pid);
      // The server's CPU per request, and how long it waited for a CPU while runnable (2 cores
      // shared with PostgreSQL and the load generator): NaN where /proc is unavailable.
      const cpuUs = ((after.cpuMs - before.cpuMs) * 1000) / ours.total;
      const waitUs = ((after.waitMs - before.waitMs) * 1000) / ours.total;
      console.log(`${BENCH}: baseline (seed 002, published, 1 vCPU / 512 MB) ${SEED_002_RPS} req/s`);
      console.log(
        `${BENCH}: tenantry ${round(ours.rps, 0)} req/s over ${ours.total} requests, p50 ${ours.p50} ms, p99 ${ours.p99} ms, ` +
          `errors ${ours.errors} (leaks ${ours.leaks}); 64 connections, ${seconds} s, ${count} tenants`,
      );
      console.log(
        `${BENCH}: server process CPU ${round(cpuUs, 1)} µs per request; runnable but waiting for a CPU ${round(waitUs, 1)} µs per request`,
      );
      const ratio = ours.rps / SEED_002_RPS;
      console.log(`${BENCH}: ratio ${round(ratio, 1)}x seed 002; goal ≥ ${GOAL} req/s with 0 errors`);
      printJsonLine({
        bench: BENCH,
        unit: 'req/s',
        baseline: SEED_002_RPS,
        ours: round(ours.rps, 0),
        ratio: round(ratio, 2),
        goal: GOAL,
        pass: ours.rps >= GOAL && ours.errors === 0,
        errors: ours.errors,
        leaks: ours.leaks,
        p50_ms: ours.p50,
        p99_ms: ours.p99,
        tenants: count,
        server_cpu_us_per_request: round(cpuUs, 1),
        server_cpu_wait_us_per_request: round(waitUs, 1),
        shared_pool_max: sharedPoolMax ?? null,
      });
    } finally {
      await server.stop();
    }
  } finally {
    await db.close();
  }
}
