/**
 * The soak benchmark's sampler: at the end of the warm-up (heap after a full GC), then every
 * `sampleS` seconds, the memory of the server, the library process and this one, the library's
 * throughput and PostgreSQL's client backends; prints a line per sample and keeps the series.
 * Also: counting the backends that serve tenant work, for the connection-leak check.
 */
import { performance } from 'node:perf_hooks';
import { processSched } from './gateway-tools.js';
import { round, withClient } from './harness.js';
import type { BackendSampler } from './load.js';
import type { SoakChild } from './soak-child.js';
import { memorySample, type FaceSummary, type MemorySample } from './soak-common.js';
import { rate } from './soak-report.js';

/** Memory of the three processes at one moment. */
export interface MemoryPoint {
  /** Seconds since the measured period began. */
  readonly t: number;
  readonly server: MemorySample;
  readonly library: MemorySample;
  readonly driver: MemorySample;
  /** CPU time each process used so far (user + system, /proc), s. */
  readonly cpuS: { readonly server: number; readonly library: number; readonly driver: number };
}

/** Takes the memory of the three processes; `gc`: heap after a full collection (children only). */
export async function memoryPoint(
  t: number,
  server: SoakChild,
  library: SoakChild,
  gc: boolean,
): Promise<MemoryPoint> {
  const [s, l] = await Promise.all([
    server.ask<MemorySample>('memory', { gc }),
    library.ask<MemorySample>('memory', { gc }),
  ]);
  const cpu = (pid: number) => processSched(pid).cpuMs / 1000;
  return {
    t,
    server: s,
    library: l,
    driver: memorySample(),
    cpuS: { server: cpu(server.pid), library: cpu(library.pid), driver: cpu(process.pid) },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Samples while the traffic runs; {@link stop} ends it. */
export class Monitor {
  /** The sample at the end of the warm-up (heap after GC), then one every `sampleS`. */
  readonly series: MemoryPoint[] = [];
  readonly #server: SoakChild;
  readonly #library: SoakChild;
  readonly #backends: BackendSampler;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(server: SoakChild, library: SoakChild, backends: BackendSampler) {
    this.#server = server;
    this.#library = library;
    this.#backends = backends;
  }

  /** Starts sampling: traffic began at `startMs` (wall clock); the measured period at `warmupS`. */
  start(startMs: number, warmupS: number, measureS: number, sampleS: number): void {
    this.#loop = (async () => {
      await sleep(startMs + warmupS * 1000 - Date.now());
      this.series.push(await memoryPoint(0, this.#server, this.#library, true));
      this.#backends.reset();
      let last = warmupS;
      for (let at = warmupS + sampleS; at <= warmupS + measureS; at += sampleS) {
        await sleep(startMs + at * 1000 - Date.now());
        if (this.#stopped) return;
        const [point, lib] = await Promise.all([
          memoryPoint(at - warmupS, this.#server, this.#library, false),
          this.#library.ask<FaceSummary>('stats'),
        ]);
        this.series.push(point);
        const m = (s: MemorySample) => `${s.rssMb} MB (heap ${s.heapUsedMb}/${s.heapTotalMb})`;
        console.log(
          `t=${String(at - warmupS).padStart(4)} s: library ${round(rate([lib], last, at), 0)} ops/s; RSS server ` +
            `${m(point.server)}, library ${m(point.library)}, driver ${m(point.driver)}; PostgreSQL backends ` +
            `${await this.#backends.sample()} (peak ${this.#backends.peak})`,
        );
        last = at;
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }

  /** The sample nearest the middle of the measured period (else the first). */
  middle(measureS: number): MemoryPoint | undefined {
    let best: MemoryPoint | undefined;
    for (const point of this.series)
      if (!best || Math.abs(point.t - measureS / 2) < Math.abs(best.t - measureS / 2)) best = point;
    return best;
  }
}

/** Control connections of tenantry (catalog, NOTIFY) and of this benchmark; the rest serve tenant work. */
const CONTROL_APPS = [
  'tenantry-operator',
  'tenantry-listener',
  'tenantry-runtime-listener',
  'bench-backend-sampler',
];

/** Client backends serving tenant work (pools of the library, the gateway, the HTTP API). */
export async function poolBackends(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend'
       AND pid <> pg_backend_pid() AND NOT (application_name = ANY ($1))`,
      [CONTROL_APPS],
    );
    return rows[0]?.n ?? 0;
  });
}

/** Waits (up to `timeoutMs`) until at most `count` backends serve tenant work; answers the last count. */
export async function settlePools(url: string, count: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let n = await poolBackends(url);
  while (n > count && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    n = await poolBackends(url);
  }
  return n;
}

/** Client backends by application name and user kind, for the report. */
export async function backendBreakdown(url: string): Promise<string> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ app: string; n: number }>(
      `SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*)::int AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1 ORDER BY 1`,
    );
    return rows.map((r) => `${r.app} ${r.n}`).join(', ');
  });
}
