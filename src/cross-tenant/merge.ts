import type { Tenant } from '../catalog/index.js';
import { Lane, type ScanContext } from './lane.js';
import { CHUNK } from './order.js';
import type { ScanPlan } from './plan.js';
import type { ScanRow } from './scan.js';
import { keyComparator } from './sort-key.js';
import type { CursorStream } from './stream.js';
import { batchable, openBatch, openSingle } from './units.js';

/** Rows all streams of a merge hold together, about (a tenant's stream reads its share per FETCH). */
const MERGE_ROWS = 50_000;
/** Rows per FETCH at least, however many streams merge. */
const MIN_FETCH = 16;

/** A stream in the merge, with its tenant when it is one tenant's (for `partial` failures). */
interface Entry {
  readonly stream: CursorStream;
  readonly tenant: Tenant | undefined;
  readonly order: number;
}

/** Tenants split into `parts` chunks of near-equal size, keeping id order within each. */
function chunks<T>(items: readonly T[], parts: number, max: number): T[][] {
  const size = Math.min(max, Math.max(1, Math.ceil(items.length / Math.max(1, parts))));
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Opens every stream a merge needs. Tenants of the catalog database share `mainLanes`
 * connections: batches spread over them, and tenants outside a batch (fallbacks, or all of them
 * when the query has parameters) get cursors of their own on those same connections. Each
 * tenant of another database needs a connection of its own for the length of the merge; those
 * beyond the budget are read whole into memory first, in order, on one connection at a time.
 */
async function openAll(
  ctx: ScanContext,
  plan: ScanPlan,
  tenants: readonly Tenant[],
  lanes: Lane[],
  maxBatch: number,
): Promise<Entry[]> {
  const batches = plan.batchQuery !== undefined;
  const main = tenants.filter((t) => batchable(t));
  const others = tenants.filter((t) => !batchable(t));
  const streamed = Math.min(others.length, main.length > 0 ? ctx.lanes - 1 : ctx.lanes);
  const mainLanes = main.length > 0 ? Math.max(1, ctx.lanes - streamed) : 0;
  const groups = batches ? chunks(main, mainLanes, maxBatch) : main.map((t) => [t]);
  // Rows per FETCH of a tenant's own stream: all streams together hold about MERGE_ROWS rows.
  const share = Math.floor(MERGE_ROWS / Math.max(1, groups.length + others.length));
  const perStream = Math.min(ctx.fetchSize, Math.max(MIN_FETCH, share));
  const entries: Entry[] = [];
  const add = (stream: CursorStream | undefined, tenant: Tenant | undefined): void => {
    if (stream && !stream.exhausted) entries.push({ stream, tenant, order: entries.length });
  };
  // Tenants of other databases beyond the connection budget: read whole, one at a time.
  for (const tenant of others.slice(streamed)) {
    const lane = new Lane(ctx.host);
    try {
      const stream = await openSingle(ctx, plan, lane, tenant, perStream);
      if (stream) {
        await stream.bufferAll();
        add(stream, tenant);
      }
    } catch (error) {
      ctx.fail(tenant, error);
    } finally {
      await lane.close();
    }
  }
  const work: Promise<void>[] = [];
  const perLane: Tenant[][][] = Array.from({ length: mainLanes }, () => []);
  groups.forEach((group, i) => perLane[i % mainLanes]?.push(group));
  for (const assigned of perLane) {
    const lane = new Lane(ctx.host);
    lanes.push(lane);
    work.push(
      (async () => {
        for (const group of assigned) {
          if (batches && group.length > 1) {
            const opened = await openBatch(ctx, plan, lane, group);
            add(opened.stream, undefined);
            for (const tenant of opened.fallbacks) {
              add(await openSingle(ctx, plan, lane, tenant, perStream), tenant);
            }
          } else {
            for (const tenant of group) add(await openSingle(ctx, plan, lane, tenant, perStream), tenant);
          }
        }
      })(),
    );
  }
  for (const tenant of others.slice(0, streamed)) {
    const lane = new Lane(ctx.host);
    lanes.push(lane);
    work.push(openSingle(ctx, plan, lane, tenant, perStream).then((stream) => add(stream, tenant)));
  }
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return entries;
}

/**
 * The `orderBy` order: a k-way merge of the streams (each sorted by PostgreSQL on the same key),
 * with a binary heap; ties go to the stream opened first. Memory holds at most two FETCHes per
 * stream: `fetchSize` rows for a batch, a share of about 50,000 rows (at least 16, at most
 * `fetchSize`) for a tenant's own stream — plus tenants of other databases beyond the
 * connection budget, read whole.
 */
export async function* mergeScan(
  ctx: ScanContext,
  plan: ScanPlan,
  tenants: readonly Tenant[],
  maxBatch: number,
): AsyncGenerator<ScanRow[]> {
  const lanes: Lane[] = [];
  try {
    const compareKeys = keyComparator(plan.keyKind ?? 'text');
    const heap: Entry[] = [];
    const less = (a: Entry, b: Entry): boolean => {
      const order = compareKeys(
        a.stream.key(a.stream.head() as unknown[]),
        b.stream.key(b.stream.head() as unknown[]),
      );
      return order < 0 || (order === 0 && a.order < b.order);
    };
    const down = (start: number): void => {
      let i = start;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l] as Entry, heap[m] as Entry)) m = l;
        if (r < heap.length && less(heap[r] as Entry, heap[m] as Entry)) m = r;
        if (m === i) return;
        [heap[i], heap[m]] = [heap[m] as Entry, heap[i] as Entry];
        i = m;
      }
    };
    for (const entry of await openAll(ctx, plan, tenants, lanes, maxBatch)) {
      if (entry.stream.head()) heap.push(entry);
    }
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
    let chunk: ScanRow[] = [];
    while (heap.length > 0) {
      const top = heap[0] as Entry;
      const stream = top.stream;
      chunk.push(stream.toRow(stream.head() as unknown[]));
      stream.advance();
      if (stream.needsRefill) {
        // Hand on what is merged so far before waiting for the round trip.
        yield chunk;
        chunk = [];
        try {
          await stream.refill();
        } catch (error) {
          if (!top.tenant) throw error;
          ctx.fail(top.tenant, error);
        }
      } else if (chunk.length >= CHUNK) {
        yield chunk;
        chunk = [];
      }
      if (stream.head()) {
        down(0);
      } else {
        const last = heap.pop() as Entry;
        if (heap.length > 0) {
          heap[0] = last;
          down(0);
        }
      }
    }
    if (chunk.length > 0) yield chunk;
  } finally {
    await Promise.all(lanes.map((lane) => lane.close()));
  }
}
