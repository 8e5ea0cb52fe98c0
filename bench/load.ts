/**
 * Helpers of the load benchmarks (tenants-scale, cold-tenant): a seeded PRNG and Zipf sampler,
 * a request-sequence runner that records latencies and errors by code, percentiles, a sampler
 * of PostgreSQL's client backends, and the final JSON line (whose goal may be a sentence).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { CatalogRoles } from '../src/index.js';
import { ignoreIdleError, withClient, type BenchDatabase } from './harness.js';

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1); the same seed, the same sequence. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Zipf(s) over ranks 0..n-1 (rank 0 the most frequent): precomputed CDF and binary search. */
export class ZipfSampler {
  readonly #cdf: Float64Array;
  readonly #random: () => number;

  constructor(n: number, s: number, random: () => number) {
    if (n < 1) throw new Error('ZipfSampler needs n >= 1');
    this.#random = random;
    this.#cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 1; k <= n; k++) {
      sum += 1 / k ** s;
      this.#cdf[k - 1] = sum;
    }
    for (let i = 0; i < n; i++) this.#cdf[i] = this.#cdf[i]! / sum;
  }

  /** Probability of rank `rank` (0-based). */
  probability(rank: number): number {
    return this.#cdf[rank]! - (rank === 0 ? 0 : this.#cdf[rank - 1]!);
  }

  /** The next rank (0-based). */
  next(): number {
    const u = this.#random();
    let lo = 0;
    let hi = this.#cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/** `count` Zipf(s) ranks over `n` items from a fixed seed. */
export function zipfSequence(n: number, s: number, count: number, seed: number): number[] {
  const sampler = new ZipfSampler(n, s, mulberry32(seed));
  return Array.from({ length: count }, () => sampler.next());
}

/** Nearest-rank percentile `p` (0–100) of `values` (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * The code of an error: a PostgreSQL SQLSTATE (`53300`), a tenantry code
 * (`TENANTRY_ERR_POOL_TIMEOUT`) or a Node system code (`ECONNRESET`), looking through `cause`;
 * else the error's name.
 */
export function errorCode(error: unknown): string {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (typeof e === 'object') {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && code !== '') return code;
      e = (e as { cause?: unknown }).cause;
    } else break;
  }
  return error instanceof Error ? error.name : typeof error;
}

/** What one run of a request sequence measured. */
export interface LoadResult {
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  /** Errors by {@link errorCode}. */
  readonly errorsByCode: ReadonlyMap<string, number>;
  /** One error message per code, for the report. */
  readonly sampleMessages: ReadonlyMap<string, string>;
  /** Latency of each successful request, ms. */
  readonly latenciesMs: readonly number[];
  readonly elapsedMs: number;
  /** Successful requests per second. */
  readonly throughput: number;
  /** The first failure in time: its request index (dispatch order) and what `note` said then. */
  readonly firstError: { readonly index: number; readonly note: string } | undefined;
}

/**
 * Runs requests 0..count-1 in `concurrency` async loops, each taking the next index; records the
 * latency of each successful request and counts failures by code (a failure does not stop the run).
 * `note` is called at the first failure (e.g. to record how many pools were open).
 */
export async function runSequence(
  count: number,
  concurrency: number,
  op: (index: number) => Promise<void>,
  note: () => string = () => '',
): Promise<LoadResult> {
  const latencies: number[] = [];
  const errorsByCode = new Map<string, number>();
  const sampleMessages = new Map<string, string>();
  let firstError: { index: number; note: string } | undefined;
  let next = 0;
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < count; index = next++) {
        const t0 = performance.now();
        try {
          await op(index);
          latencies.push(performance.now() - t0);
        } catch (error) {
          errors++;
          const code = errorCode(error);
          errorsByCode.set(code, (errorsByCode.get(code) ?? 0) + 1);
          if (!sampleMessages.has(code)) {
            sampleMessages.set(code, error instanceof Error ? error.message : String(error));
          }
          firstError ??= { index, note: note() };
        }
      }
    }),
  );
  const elapsedMs = performance.now() - start;
  return {
    requests: count,
    ok: latencies.length,
    errors,
    errorsByCode,
    sampleMessages,
    latenciesMs: latencies,
    elapsedMs,
    throughput: latencies.length / (elapsedMs / 1000),
    firstError,
  };
}

/** Runs `fn` over `items` with at most `concurrency` calls in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
    }),
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Samples the number of PostgreSQL client backends (cluster-wide, without the sampler's own)
 * every `intervalMs` from a connection of its own, and keeps the peak since the last reset.
 */
export class BackendSampler {
  readonly #client: pg.Client;
  readonly #intervalMs: number;
  #peak = 0;
  #last = 0;
  #samples = 0;
  #running = true;
  #loop: Promise<void> | undefined;
  #failure: unknown;

  private constructor(client: pg.Client, intervalMs: number) {
    this.#client = client;
    this.#intervalMs = intervalMs;
  }

  /** Connects (as the superuser of `url`) and starts sampling. */
  static async start(url: string, intervalMs = 20): Promise<BackendSampler> {
    const client = new pg.Client({ connectionString: url, application_name: 'bench-backend-sampler' });
    client.on('error', ignoreIdleError);
    await client.connect();
    const sampler = new BackendSampler(client, intervalMs);
    await sampler.sample();
    sampler.#loop = sampler.#run();
    return sampler;
  }

  /** Takes one sample now and returns it. */
  async sample(): Promise<number> {
    const { rows } = await this.#client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    const n = rows[0]?.n ?? 0;
    this.#last = n;
    this.#samples++;
    if (n > this.#peak) this.#peak = n;
    return n;
  }

  /**
   * Sessions ever established to the current database (`pg_stat_database.sessions`): the
   * difference over a run is how many backends it opened (read it once they have closed).
   */
  async sessions(): Promise<number> {
    const { rows } = await this.#client.query<{ n: string }>(
      'SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0]?.n ?? Number.NaN);
  }

  async #run(): Promise<void> {
    while (this.#running) {
      try {
        await this.sample();
      } catch (error) {
        this.#failure = error;
        return;
      }
      await sleep(this.#intervalMs);
    }
  }

  /** Highest sample since the last {@link reset}. */
  get peak(): number {
    if (this.#failure !== undefined) throw new Error('backend sampler failed', { cause: this.#failure });
    return this.#peak;
  }

  /** Samples since the last {@link reset}. */
  get samples(): number {
    return this.#samples;
  }

  /** Starts a new peak from the current count. */
  reset(): void {
    this.#peak = this.#last;
    this.#samples = 0;
  }

  /** Waits (up to `timeoutMs`) until at most `count` client backends remain; returns the last count. */
  async settle(count: number, timeoutMs = 15_000): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    let n = await this.sample();
    while (n > count && performance.now() < deadline) {
      await sleep(50);
      n = await this.sample();
    }
    return n;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.#client.end().catch(() => undefined);
  }
}

/** `12.345` → `"12.35"` (ms, two decimals). */
export function fmtMs(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : String(value);
}

/**
 * Prints the final machine-readable line (the last line a benchmark prints). Like the harness's
 * `printResult`, but `goal` may be a sentence for goals that are not one ratio.
 */
export function printJsonLine(result: {
  bench: string;
  unit: string;
  baseline: number;
  ours: number;
  ratio: number;
  goal: string | number;
  pass: boolean;
  [extra: string]: unknown;
}): void {
  console.log(JSON.stringify(result));
}

/**
 * On an external server (`TENANTRY_BENCH_DATABASE_URL`), registers every role tenantry created
 * for the bench database — tenants' login roles first, then the catalog's own — to be dropped
 * after the database; roles are cluster-wide and outlive it. No-op on the embedded server.
 */
export async function dropTenantryRolesOnClose(
  db: BenchDatabase,
  roles: CatalogRoles | undefined,
): Promise<void> {
  if (!process.env.TENANTRY_BENCH_DATABASE_URL) return;
  const tenantRoles = await withClient(db.url, async (client) => {
    const { rows } = await client
      .query<{ role_name: string }>('SELECT role_name FROM tenantry.tenant_role')
      .catch(() => ({ rows: [] as { role_name: string }[] }));
    return rows.map((r) => r.role_name);
  });
  db.dropRolesOnClose(...tenantRoles);
  if (roles) db.dropRolesOnClose(roles.app, roles.maint, roles.fdw, roles.tenants, roles.global, roles.owner);
}
