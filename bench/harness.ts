/**
 * Shared plumbing of the benchmarks: command-line flags, a fresh database (an embedded
 * PostgreSQL of its own, or a new database on `TENANTRY_BENCH_DATABASE_URL`), timing loops
 * that alternate the measured sides, and the final JSON line.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { startEmbedded, type EmbeddedServer } from '../src/index.js';

/** Flags every benchmark understands. */
export interface BenchArgs {
  /** `--quick`: short rounds, the whole run well under a minute. */
  readonly quick: boolean;
  /** Further flags the benchmark declared (e.g. `--explain`). */
  readonly flags: ReadonlySet<string>;
}

/** A benchmark entry point, called by bench/run.js with the arguments after the name. */
export type BenchMain = (argv: readonly string[]) => Promise<void>;

/** Parses `argv`; throws (exit 2 in run.js) on a flag the benchmark does not know. */
export function parseArgs(argv: readonly string[], extraFlags: readonly string[] = []): BenchArgs {
  const flags = new Set<string>();
  let quick = false;
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (extraFlags.includes(arg)) flags.add(arg);
    else {
      const known = ['--quick', ...extraFlags].join(', ');
      throw new UsageError(`unknown argument ${JSON.stringify(arg)} (known: ${known})`);
    }
  }
  return { quick, flags };
}

/** A bad command line; bench/run.js exits 2 on it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Server settings of the embedded PostgreSQL: durable writes are irrelevant to these reads. */
export const embeddedFlags: readonly string[] = [
  'max_connections=100',
  'shared_buffers=512MB',
  'maintenance_work_mem=256MB',
  'max_wal_size=4GB',
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'autovacuum=off',
  'jit=off',
];

/**
 * {@link embeddedFlags} with `settings` in place of the flags of the same names (a setting given
 * on the command line overrides `ALTER SYSTEM`, so a benchmark that needs another value must
 * start the server with it).
 */
function withSettings(settings: Readonly<Record<string, string>> = {}): string[] {
  const names = new Set(Object.keys(settings));
  return [
    ...embeddedFlags.filter((flag) => !names.has(flag.slice(0, flag.indexOf('=')))),
    ...Object.entries(settings).map(([name, value]) => `${name}=${value}`),
  ];
}

/** A fresh database for one benchmark run. */
export interface BenchDatabase {
  /** Superuser URL of the fresh database. */
  readonly url: string;
  /** Where it lives, for the report. */
  readonly where: string;
  /** PostgreSQL's `server_version`. */
  readonly serverVersion: string;
  /**
   * Roles to drop after the database on an external server (roles are cluster-wide); tenant
   * login roles listed in `tenantry.tenant_role` are dropped too.
   */
  dropRolesOnClose(...roles: string[]): void;
  /** Drops the database (external server) or stops the embedded server and removes its files. */
  close(): Promise<void>;
}

/** The role names of a tenantry installation (`tenantry.roles`), whatever roles it has. */
export function roleNames(roles: object): string[] {
  return Object.values(roles).filter((value: unknown): value is string => typeof value === 'string');
}

/** Returns `url` pointing at `database`. */
export function urlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Returns `url` with `user` and `password`. */
export function urlAs(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Runs `fn` with one plain client on `url`, then closes it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Starts an embedded PostgreSQL in a fresh temporary data directory, with {@link embeddedFlags}
 * and `settings` (or, with `TENANTRY_BENCH_DATABASE_URL`, uses that server as it is) and creates
 * a fresh database on it.
 */
export async function openDatabase(
  label: string,
  options: { readonly settings?: Readonly<Record<string, string>> } = {},
): Promise<BenchDatabase> {
  const external = process.env.TENANTRY_BENCH_DATABASE_URL;
  let server: EmbeddedServer | undefined;
  let dataDir: string | undefined;
  let serverUrl: string;
  if (external) {
    serverUrl = external;
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'tenantry-bench-'));
    chmodSync(dataDir, 0o755);
    try {
      server = await startEmbedded({ dataDir, port: 0, postgresFlags: withSettings(options.settings) });
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    }
    serverUrl = server.url;
  }
  const database = `bench_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  let serverVersion = 'unknown';
  try {
    await withClient(serverUrl, async (client) => {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      serverVersion = rows[0]?.v ?? 'unknown';
    });
  } catch (error) {
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const roles: string[] = [];
  let closed = false;
  return {
    url: urlFor(serverUrl, database),
    where: external
      ? `database ${database} on TENANTRY_BENCH_DATABASE_URL`
      : `embedded PostgreSQL on port ${server?.port ?? '?'}`,
    serverVersion,
    dropRolesOnClose: (...names) => void roles.push(...names),
    async close() {
      if (closed) return;
      closed = true;
      if (server) {
        await server.stop();
        if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        return;
      }
      // Tenant login roles tenantry created (cluster-wide, like its own roles).
      const tenantRoles = await withClient(urlFor(serverUrl, database), async (client) => {
        const { rows } = await client.query<{ role_name: string }>(
          `SELECT role_name FROM tenantry.tenant_role WHERE to_regclass('tenantry.tenant_role') IS NOT NULL`,
        );
        return rows.map((row) => row.role_name);
      }).catch(() => [] as string[]);
      await withClient(serverUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
        for (const role of [...tenantRoles, ...roles]) {
          await client
            .query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`)
            .catch((error: unknown) => console.error(`could not drop role ${role}: ${String(error)}`));
        }
      });
    },
  };
}

/**
 * For `pool.on('error')`: pg-pool's `end()` resolves before its sockets have closed, so stopping
 * the server right after can fail an idle connection; that is not a benchmark failure.
 */
export function ignoreIdleError(): void {}

/** Median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Median of the per-round ratios `ours[i] / baseline[i]`: each pair ran back to back, so slow
 * drifts of the machine cancel out (a cross-check of the ratio of medians).
 */
export function pairedRatio(baseline: readonly number[], ours: readonly number[]): number {
  return median(baseline.map((value, i) => ours[i]! / value));
}

/** The 1-minute load average: other processes on this machine (tests, builds) add noise. */
export function loadAverage(): number {
  return round(loadavg()[0] ?? Number.NaN, 2);
}

/** A uniformly random integer in [min, max]. */
export function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/**
 * Runs `op` in `concurrency` async loops until `durationMs` has passed (each loop finishes
 * the operation it is in) and returns operations per second; `op` returns how many
 * operations it did (1 by default).
 */
export async function throughput(
  concurrency: number,
  durationMs: number,
  op: (worker: number) => Promise<number | void>,
): Promise<number> {
  let count = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        // Not `count += await op()`: that reads `count` before the await and loses the
        // increments other loops make meanwhile.
        const done = await op(worker);
        count += done ?? 1;
      }
    }),
  );
  return count / ((performance.now() - start) / 1000);
}

/** One measured side of a comparison. */
export interface Side {
  readonly name: string;
  /** Runs one round and returns its rate. */
  readonly run: () => Promise<number>;
}

/**
 * Runs `rounds` rounds of every side, rotating the order each round (A B C, B C A, C A B, …)
 * so that drift of this machine's speed hits every side alike; returns the per-round rates
 * by side name. `onRound` sees each round's rates.
 */
export async function alternate(
  rounds: number,
  sides: readonly Side[],
  onRound?: (round: number, rates: ReadonlyMap<string, number>) => void,
): Promise<Map<string, number[]>> {
  const results = new Map<string, number[]>(sides.map((side) => [side.name, []]));
  for (let round = 0; round < rounds; round++) {
    const rates = new Map<string, number>();
    for (let i = 0; i < sides.length; i++) {
      const side = sides[(round + i) % sides.length]!;
      const rate = await side.run();
      rates.set(side.name, rate);
      results.get(side.name)!.push(rate);
    }
    onRound?.(round + 1, rates);
  }
  return results;
}

/** `1234.5` → `"1,235"`. */
export function fmtRate(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Rounds to `digits` decimals (for the JSON line). */
export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Prints the final machine-readable line (it must be the last line a benchmark prints). */
export function printResult(result: {
  bench: string;
  unit: string;
  baseline: number;
  ours: number;
  ratio: number;
  goal: number;
  pass: boolean;
  [extra: string]: unknown;
}): void {
  console.log(JSON.stringify(result));
}
