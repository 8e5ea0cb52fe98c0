/**
 * pgbench for the gateway benchmark: `pgbench -i` of the tables, and timed `-S` runs whose
 * throughput comes from pgbench's own summary and whose latency percentiles come from its
 * per-transaction logs (`-l`: every transaction's latency in µs), so p99 is exact.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBinary, runProgram } from './gateway-tools.js';

/** Where and as whom pgbench connects. */
export interface PgbenchTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

/** One timed run. */
export interface PgbenchRun {
  /** pgbench's "tps = … (without initial connection time)". */
  readonly tps: number;
  readonly transactions: number;
  readonly failed: number;
  /** Latency of every transaction, in ms. */
  readonly latenciesMs: Float64Array;
}

/** pgbench lives in Debian's server package postgresql-15 (postgresql-client-15 has psql only). */
export function pgbenchBinary(): Promise<string> {
  return ensureBinary('pgbench', 'postgresql-15');
}

function connectionArgs(target: PgbenchTarget): string[] {
  return ['-h', target.host, '-p', String(target.port), '-U', target.user];
}

function env(target: PgbenchTarget): NodeJS.ProcessEnv {
  // No ~/.pgpass, service file or PG* variable of the caller's may change the target.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  return { ...clean, PGPASSWORD: target.password, PGCONNECT_TIMEOUT: '10' };
}

/** `pgbench -i -s scale` (client-side data generation, vacuum, primary keys). */
export async function pgbenchInit(binary: string, target: PgbenchTarget, scale: number): Promise<void> {
  await runProgram(binary, ['-i', '-q', '-s', String(scale), ...connectionArgs(target), target.database], {
    env: env(target),
  });
}

/** Reads a number that follows `label` in pgbench's summary (NaN when absent). */
function summaryNumber(output: string, label: RegExp): number {
  const match = label.exec(output);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

/**
 * `pgbench -n -S -c clients -j threads -T seconds` with per-transaction logs (`log` false: a
 * warm-up, no log). Throws when pgbench fails or any transaction failed.
 */
export async function pgbenchSelect(
  binary: string,
  target: PgbenchTarget,
  run: { clients: number; threads: number; seconds: number; log: boolean },
): Promise<PgbenchRun> {
  const dir = mkdtempSync(join(tmpdir(), 'tenantry-bench-pgbench-'));
  try {
    const args = [
      '-n',
      '-S',
      '-c',
      String(run.clients),
      '-j',
      String(run.threads),
      '-T',
      String(run.seconds),
    ];
    if (run.log) args.push('-l', `--log-prefix=${join(dir, 'tx')}`);
    const { stdout, stderr } = await runProgram(
      binary,
      [...args, ...connectionArgs(target), target.database],
      { env: env(target), cwd: dir },
    );
    const output = `${stdout}\n${stderr}`;
    const tps = summaryNumber(output, /^tps = ([0-9.]+)/m);
    const transactions = summaryNumber(output, /number of transactions actually processed: (\d+)/);
    const failed = summaryNumber(output, /number of failed transactions: (\d+)/) || 0;
    if (!Number.isFinite(tps) || failed > 0) {
      throw new Error(`pgbench against ${target.host}:${target.port} failed:\n${output.trim()}`);
    }
    return { tps, transactions, failed, latenciesMs: run.log ? readLatencies(dir) : new Float64Array() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Latencies (ms) from pgbench's logs: `client_id transaction_no time script_no epoch us`, time in µs. */
function readLatencies(dir: string): Float64Array {
  const values: number[] = [];
  for (const file of readdirSync(dir).filter((name) => name.startsWith('tx.'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      const first = line.indexOf(' ');
      const second = line.indexOf(' ', first + 1);
      const third = line.indexOf(' ', second + 1);
      const micros = Number(line.slice(second + 1, third));
      if (Number.isFinite(micros)) values.push(micros / 1000);
    }
  }
  return Float64Array.from(values);
}

/** Nearest-rank percentile `p` of the concatenation of `samples` (NaN when empty). */
export function percentileOf(samples: readonly Float64Array[], p: number): number {
  const total = samples.reduce((n, s) => n + s.length, 0);
  if (total === 0) return Number.NaN;
  const all = new Float64Array(total);
  let at = 0;
  for (const s of samples) {
    all.set(s, at);
    at += s.length;
  }
  all.sort();
  const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
  return all[rank - 1]!;
}
