/**
 * What the soak benchmark's faces share: per-face statistics (operations per second of the run,
 * errors by code, leaks, a latency histogram of fixed size however long the run), the leak
 * oracle, a tenant picker and a weighted choice of operations.
 */
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { errorCode, mulberry32, ZipfSampler } from './load.js';

/** The figures of one face, as they cross process boundaries (plain JSON). */
export interface FaceSummary {
  readonly face: string;
  /** Successful operations over the whole run, warm-up included. */
  readonly ops: number;
  readonly errors: number;
  readonly errorsByCode: Record<string, number>;
  /** One message per error code. */
  readonly errorSamples: Record<string, string>;
  /** Rows that named another tenant than the one that asked. */
  readonly leaks: number;
  readonly leakSamples: readonly string[];
  /** Successful operations in each second since the traffic started (warm-up included). */
  readonly perSecond: readonly number[];
  /** Latency percentiles of the measured period (after the warm-up), ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Face-specific counters (logins, reconnects, …). */
  readonly extra: Record<string, number>;
  /** Per kind of operation: successes in the measured period and their latency percentiles, ms. */
  readonly byKind: Record<string, { readonly ops: number; readonly p50Ms: number; readonly p99Ms: number }>;
}

/** When and how hard a face runs. */
export interface TrafficPlan {
  readonly startMs: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly concurrency: number;
}

/** A row as a face receives it. */
export type Row = Record<string, unknown>;

/** Statements more than one face runs. */
export const UPDATE_CUSTOMER =
  'UPDATE customer SET visits = visits + 1 WHERE cust_num = $1 RETURNING tenant_name';
export const INSERT_NOTE = 'INSERT INTO note (tenant_name, body) VALUES ($1, $2) RETURNING tenant_name';

/** A wrong but tenant-correct answer (e.g. a missing row): an error, not a leak. */
export class WrongResult extends Error {
  readonly code = 'WRONG_RESULT';
}

/** Statistics of one face: cheap to update, bounded in memory. */
export class FaceStats {
  readonly face: string;
  readonly #start: number;
  readonly #measureFrom: number;
  readonly #latency: RecordableHistogram = createHistogram();
  readonly #byKind = new Map<string, RecordableHistogram>();
  readonly #perSecond: number[] = [];
  readonly #errorsByCode = new Map<string, number>();
  readonly #errorSamples = new Map<string, string>();
  readonly #leakSamples: string[] = [];
  readonly extra: Record<string, number> = {};
  #ops = 0;
  #errors = 0;
  #leaks = 0;

  /** `startMs` and `warmupMs` on the wall clock (`Date.now()`), shared by every process. */
  constructor(face: string, startMs: number, warmupMs: number) {
    this.face = face;
    // performance.now() of this process at the wall-clock start.
    this.#start = performance.now() - (Date.now() - startMs);
    this.#measureFrom = this.#start + warmupMs;
  }

  /**
   * Times `op` of kind `kind`: a success, an error (counted by code) or leaked rows (counted,
   * sampled).
   */
  async time(kind: string, op: () => Promise<void>): Promise<void> {
    const t0 = performance.now();
    try {
      await op();
    } catch (error) {
      this.fail(error);
      return;
    }
    const now = performance.now();
    this.#ops++;
    const second = Math.floor((now - this.#start) / 1000);
    if (second >= 0) this.#perSecond[second] = (this.#perSecond[second] ?? 0) + 1;
    if (t0 >= this.#measureFrom) {
      const micros = Math.max(1, Math.round((now - t0) * 1000));
      this.#latency.record(micros);
      let histogram = this.#byKind.get(kind);
      if (!histogram) this.#byKind.set(kind, (histogram = createHistogram()));
      histogram.record(micros);
    }
  }

  fail(error: unknown): void {
    this.#errors++;
    const code = errorCode(error);
    this.#errorsByCode.set(code, (this.#errorsByCode.get(code) ?? 0) + 1);
    if (!this.#errorSamples.has(code))
      this.#errorSamples.set(code, error instanceof Error ? error.message : String(error));
  }

  /** Counts `count` rows of `tenant`'s answer that named another tenant. */
  leak(tenant: string, count: number, detail: string): void {
    this.#leaks += count;
    if (this.#leakSamples.length < 5) this.#leakSamples.push(`${tenant}: ${detail}`);
  }

  /** Adds one to a face-specific counter. */
  count(name: string, by = 1): void {
    this.extra[name] = (this.extra[name] ?? 0) + by;
  }

  summary(): FaceSummary {
    const perSecond = Array.from(this.#perSecond, (n) => n ?? 0);
    return {
      face: this.face,
      ops: this.#ops,
      errors: this.#errors,
      errorsByCode: Object.fromEntries(this.#errorsByCode),
      errorSamples: Object.fromEntries(this.#errorSamples),
      leaks: this.#leaks,
      leakSamples: [...this.#leakSamples],
      perSecond,
      // The histogram holds µs.
      p50Ms: this.#latency.count > 0 ? this.#latency.percentile(50) / 1000 : Number.NaN,
      p99Ms: this.#latency.count > 0 ? this.#latency.percentile(99) / 1000 : Number.NaN,
      extra: { ...this.extra },
      byKind: Object.fromEntries(
        [...this.#byKind].map(([kind, h]) => [
          kind,
          { ops: h.count, p50Ms: h.percentile(50) / 1000, p99Ms: h.percentile(99) / 1000 },
        ]),
      ),
    };
  }
}

/**
 * The leak oracle: every row names its tenant in `field` (`tenant_name`), or, for seed 002's
 * `users`, starts its `name` with `<tenant>:`. Rows naming anyone else are counted as leaks;
 * fewer rows than `atLeast` is a {@link WrongResult}.
 */
export function checkRows(
  stats: FaceStats,
  tenant: string,
  rows: readonly Record<string, unknown>[],
  field: 'tenant_name' | 'name',
  atLeast = 0,
): void {
  let leaked = 0;
  let first: unknown;
  for (const row of rows) {
    const value = row[field];
    const ok = field === 'tenant_name' ? value === tenant : String(value).startsWith(`${tenant}:`);
    if (!ok) {
      leaked++;
      first ??= value;
    }
  }
  if (leaked > 0)
    stats.leak(tenant, leaked, `${leaked} of ${rows.length} rows named ${JSON.stringify(first)}`);
  if (rows.length < atLeast) throw new WrongResult(`${tenant}: ${rows.length} rows, expected ≥ ${atLeast}`);
}

/**
 * Picks tenants: half the picks uniform over all tenants, half Zipf(1.0) over a fixed shuffle
 * of them (hot tenants of every isolation model, and a long tail).
 */
export class TenantPicker<T> {
  readonly #items: readonly T[];
  readonly #shuffled: readonly T[];
  readonly #random: () => number;
  readonly #zipf: ZipfSampler;

  constructor(items: readonly T[], seed: number) {
    this.#items = items;
    this.#random = mulberry32(seed);
    const order = mulberry32(12345); // the same hot tenants in every process
    const shuffled = [...items];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(order() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    this.#shuffled = shuffled;
    this.#zipf = new ZipfSampler(items.length, 1.0, this.#random);
  }

  next(): T {
    if (this.#random() < 0.5) return this.#items[Math.floor(this.#random() * this.#items.length)]!;
    return this.#shuffled[this.#zipf.next()]!;
  }

  /** A uniform number in [0, 1) from this picker's sequence. */
  random(): number {
    return this.#random();
  }

  /** A uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#random() * (max - min + 1));
  }
}

/** Chooses one of `choices` by weight, with `random` in [0, 1). */
export function weighted<K extends string>(choices: readonly (readonly [K, number])[], random: number): K {
  const total = choices.reduce((sum, [, w]) => sum + w, 0);
  let at = random * total;
  for (const [key, w] of choices) {
    if (at < w) return key;
    at -= w;
  }
  return choices[choices.length - 1]![0];
}

/** Memory of a process, MB. */
export interface MemorySample {
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly heapTotalMb: number;
  readonly externalMb: number;
}

/** `process.memoryUsage()` in MB; with `gc`, after two full collections (needs --expose-gc). */
export function memorySample(gc = false): MemorySample {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect) {
    collect();
    collect();
  }
  const m = process.memoryUsage();
  const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;
  return {
    rssMb: mb(m.rss),
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
  };
}
