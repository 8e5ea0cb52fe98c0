/**
 * Summary of a V8 CPU profile (.cpuprofile, as `node --cpu-prof` or the inspector writes it):
 * the functions with the most self time and the most inclusive time, as shares of the busy
 * (non-idle) time, so the hot path of the gateway can be read off the benchmark's output.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function of the summary. */
export interface HotFunction {
  readonly name: string;
  /** Share of the busy time, in %. */
  readonly percent: number;
}

/** What a profile shows. */
export interface ProfileSummary {
  /** Sampled time, ms. */
  readonly totalMs: number;
  /** Time not idle (JS, native, GC), ms. */
  readonly busyMs: number;
  readonly self: readonly HotFunction[];
  readonly inclusive: readonly HotFunction[];
}

const IDLE = new Set(['(idle)', '(root)']);

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const at = frame.url.indexOf('/dist/');
  const where = at >= 0 ? frame.url.slice(at + 6) : frame.url.replace(/^file:\/\/.*\//, '');
  return `${name} ${where}:${frame.lineNumber + 1}`;
}

function top(map: Map<string, number>, busy: number, count: number): HotFunction[] {
  return [...map]
    .filter(([name]) => !IDLE.has(name))
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, time]) => ({ name, percent: busy > 0 ? (100 * time) / busy : 0 }));
}

/** Reads `file` and sums self and inclusive time per function (`count` of each, largest first). */
export function summarizeProfile(file: string, count = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const perNode = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    const id = profile.samples[i]!;
    perNode.set(id, (perNode.get(id) ?? 0) + delta);
    total += delta;
  }
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  for (const [id, time] of perNode) {
    const node = byId.get(id);
    if (!node) continue;
    const name = label(node.callFrame);
    if (node.callFrame.functionName === '(idle)') idle += time;
    self.set(name, (self.get(name) ?? 0) + time);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)?.callFrame;
      if (!frame) break;
      const key = label(frame);
      if (seen.has(key)) continue; // recursion: count once
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + time);
    }
  }
  const busy = total - idle;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    self: top(self, busy, count),
    inclusive: top(inclusive, busy, count),
  };
}

/** The summary as lines for the benchmark's output. */
export function formatProfile(summary: ProfileSummary): string[] {
  const pct = (f: HotFunction): string => `${f.percent.toFixed(1).padStart(5)} %  ${f.name}`;
  return [
    `gateway CPU profile: ${(summary.busyMs / 1000).toFixed(2)} s busy of ${(summary.totalMs / 1000).toFixed(2)} s sampled ` +
      `(shares below are of the busy time)`,
    '  (V8 samples wall time: `writeBuffer` is time inside socket write() calls, including time spent',
    '  runnable but preempted after waking the reader; perf shows the on-CPU split, see docs/gateway-benchmark.md)',
    '  top self time:',
    ...summary.self.map((f) => `    ${pct(f)}`),
    '  top inclusive time:',
    ...summary.inclusive.map((f) => `    ${pct(f)}`),
  ];
}
