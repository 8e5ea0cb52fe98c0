/**
 * Figures of the soak benchmark: throughput per window and face, the memory and connection
 * samples, the pass/fail criteria, and the printed report.
 */
import { round } from './harness.js';
import type { FaceSummary, MemorySample } from './soak-common.js';

/** Pass criteria (docs/soak.md). */
export const CRITERIA = {
  /** Throughput of the last window ≥ this × the first one's. */
  ratio: 0.8,
  /** Errors / attempted operations below this. */
  errorRate: 0.001,
  /** Heap after a full GC may grow at most this much over the measured period, MB. */
  heapGrowthMb: 32,
  /**
   * RSS may grow at most this much over the second half of the measured period, MB … (a leak
   * grows steadily; malloc arenas of the libuv threads fill once — scrypt logins take ~16 MB
   * each — and stay: a plateau, reached in the first half)
   */
  rssLateGrowthMb: 32,
  /** … or this share of the RSS in the middle of the period, whichever is larger. */
  rssLateGrowthShare: 0.1,
} as const;

/** Memory of one process at the start (end of warm-up) and end of the measured period. */
export interface ProcessMemory {
  readonly label: string;
  readonly idle: MemorySample;
  readonly start: MemorySample;
  /** Half-way through the measured period. */
  readonly mid: MemorySample;
  readonly end: MemorySample;
  /** Whether the heap figures were taken after a full GC. */
  readonly gc: boolean;
}

/** Operations per second of `faces` together over seconds [from, to) of the run. */
export function rate(faces: readonly FaceSummary[], from: number, to: number): number {
  let sum = 0;
  for (const face of faces) for (let s = from; s < to; s++) sum += face.perSecond[s] ?? 0;
  return sum / (to - from);
}

/**
 * Whether a process's memory stayed within {@link CRITERIA}; the reason when not. `judgeRss`
 * false (quick runs: too short to tell the arenas' plateau from a leak): RSS is only reported.
 */
export function memoryVerdict(m: ProcessMemory, judgeRss: boolean): string | undefined {
  const lateGrowth = m.end.rssMb - m.mid.rssMb;
  const bound = Math.max(CRITERIA.rssLateGrowthMb, CRITERIA.rssLateGrowthShare * m.mid.rssMb);
  if (judgeRss && lateGrowth > bound)
    return `${m.label} RSS grew ${lateGrowth.toFixed(0)} MB over the second half (bound ${bound.toFixed(0)} MB)`;
  const heapGrowth = m.end.heapUsedMb - m.start.heapUsedMb;
  if (m.gc && heapGrowth > CRITERIA.heapGrowthMb)
    return `${m.label} heap after GC grew ${heapGrowth.toFixed(1)} MB (bound ${CRITERIA.heapGrowthMb} MB)`;
  return undefined;
}

export function describeMemory(m: ProcessMemory): string {
  const heap = m.gc ? 'heap after GC' : 'heap';
  return (
    `${m.label.padEnd(16)} RSS ${m.idle.rssMb} MB idle → ${m.start.rssMb} MB at start → ${m.mid.rssMb} MB half-way → ` +
    `${m.end.rssMb} MB at end (${signed(m.end.rssMb - m.start.rssMb)} MB; second half ${signed(m.end.rssMb - m.mid.rssMb)} MB); ${heap} ${m.start.heapUsedMb} → ${m.end.heapUsedMb} MB ` +
    `(${signed(m.end.heapUsedMb - m.start.heapUsedMb)} MB)`
  );
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(1)}`;
}

/** One face's line of the report, over the measured seconds [from, to). */
export function describeFace(face: FaceSummary, from: number, to: number): string {
  const extra = Object.entries(face.extra)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const codes = Object.entries(face.errorsByCode)
    .map(([code, n]) => `${code} ×${n}`)
    .join(', ');
  return (
    `${face.face.padEnd(8)} ${round(rate([face], from, to), 0)} ops/s (${face.ops} ops in all), ` +
    `p50 ${face.p50Ms.toFixed(2)} ms, p99 ${face.p99Ms.toFixed(2)} ms, errors ${face.errors}` +
    `${codes ? ` (${codes})` : ''}, leaks ${face.leaks}${extra ? `; ${extra}` : ''}`
  );
}

/** Per kind of operation of `face`: measured successes, p50 and p99. */
export function describeKinds(face: FaceSummary): string {
  return Object.entries(face.byKind)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, k]) => `${kind} ${k.ops} × ${k.p50Ms.toFixed(1)}/${k.p99Ms.toFixed(0)} ms`)
    .join(', ');
}

/** Error messages and leak samples worth showing (one per code). */
export function samples(faces: readonly FaceSummary[]): string[] {
  const lines: string[] = [];
  for (const face of faces) {
    for (const [code, message] of Object.entries(face.errorSamples))
      lines.push(`  ${face.face} error ${code}: ${message.split('\n')[0]?.slice(0, 300) ?? ''}`);
    for (const leak of face.leakSamples) lines.push(`  ${face.face} LEAK ${leak}`);
  }
  return lines;
}
