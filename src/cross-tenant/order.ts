import type { Tenant } from '../catalog/index.js';
import { Lane, type ScanContext } from './lane.js';
import type { ScanPlan } from './plan.js';
import type { ScanRow } from './scan.js';
import type { CursorStream } from './stream.js';
import { openBatch, openSingle, type OpenedBatch, type ScanUnit } from './units.js';

/** An opened unit: a batch (with the tenants it left out) or one tenant's stream. */
type Opened = { readonly lane: Lane } & (
  | { readonly kind: 'batch'; readonly batch: OpenedBatch }
  | { readonly kind: 'single'; readonly stream: CursorStream | undefined; readonly tenant: Tenant }
);

/** Rows handed on at once: the consumer then takes them without a round of promises per row. */
export const CHUNK = 256;

/** Yields a stream's rows in chunks, fetching as it goes; a failure after the open ends the stream. */
async function* drain(
  ctx: ScanContext,
  stream: CursorStream,
  tenant: Tenant | undefined,
): AsyncGenerator<ScanRow[]> {
  for (;;) {
    if (stream.needsRefill) {
      try {
        await stream.refill();
      } catch (error) {
        if (!tenant) throw error;
        ctx.fail(tenant, error);
        return;
      }
    }
    const chunk: ScanRow[] = [];
    for (let row = stream.head(); row && chunk.length < CHUNK; row = stream.head()) {
      chunk.push(stream.toRow(row));
      stream.advance();
    }
    if (chunk.length === 0) return;
    yield chunk;
  }
}

/** One tenant, opened on `lane` and drained. */
async function* single(
  ctx: ScanContext,
  plan: ScanPlan,
  lane: Lane,
  tenant: Tenant,
): AsyncGenerator<ScanRow[]> {
  const stream = await openSingle(ctx, plan, lane, tenant);
  if (stream) yield* drain(ctx, stream, tenant);
}

/**
 * A batch's rows in tenant order, with the tenants it left out scanned on their own (on the same
 * connection) at their place in that order.
 */
async function* batchRows(
  ctx: ScanContext,
  plan: ScanPlan,
  opened: Opened & { kind: 'batch' },
): AsyncGenerator<ScanRow[]> {
  const pending = [...opened.batch.fallbacks].sort((a, b) => a.id - b.id);
  const stream = opened.batch.stream;
  if (stream) {
    for (;;) {
      if (stream.needsRefill) await stream.refill();
      const chunk: ScanRow[] = [];
      let row = stream.head();
      while (row && chunk.length < CHUNK) {
        const id = row[0] as number;
        if (pending.length > 0 && (pending[0] as Tenant).id < id) break;
        chunk.push(stream.toRow(row));
        stream.advance();
        row = stream.head();
      }
      if (chunk.length > 0) yield chunk;
      if (row && pending.length > 0 && (pending[0] as Tenant).id < (row[0] as number)) {
        yield* single(ctx, plan, opened.lane, pending.shift() as Tenant);
      } else if (!row && !stream.needsRefill) {
        break;
      }
    }
  }
  for (const tenant of pending) yield* single(ctx, plan, opened.lane, tenant);
}

/**
 * The default order: tenant by tenant, in id order. Unit `i` runs on lane `i mod lanes`, and is
 * opened (declared, first rows fetched) as soon as unit `i - lanes` is done, so at most `lanes`
 * units are open — and at most `lanes × fetchSize` rows buffered — at any time.
 */
export async function* scanInTenantOrder(
  ctx: ScanContext,
  plan: ScanPlan,
  units: readonly ScanUnit[],
): AsyncGenerator<ScanRow[]> {
  const width = Math.max(1, Math.min(ctx.lanes, units.length));
  const lanes = Array.from({ length: width }, () => new Lane(ctx.host));
  const opening: Promise<Opened>[] = [];
  const open = (i: number): void => {
    const unit = units[i] as ScanUnit;
    const lane = lanes[i % width] as Lane;
    const promise: Promise<Opened> =
      unit.kind === 'batch'
        ? openBatch(ctx, plan, lane, unit.tenants).then((batch) => ({ kind: 'batch', lane, batch }))
        : openSingle(ctx, plan, lane, unit.tenant).then((stream) => ({
            kind: 'single',
            lane,
            stream,
            tenant: unit.tenant,
          }));
    promise.catch(() => undefined);
    opening[i] = promise;
  };
  try {
    for (let i = 0; i < width; i++) open(i);
    for (let i = 0; i < units.length; i++) {
      const opened = await (opening[i] as Promise<Opened>);
      if (opened.kind === 'batch') yield* batchRows(ctx, plan, opened);
      else if (opened.stream) yield* drain(ctx, opened.stream, opened.tenant);
      if (i + width < units.length) open(i + width);
    }
  } finally {
    await Promise.allSettled(opening);
    await Promise.all(lanes.map((lane) => lane.close()));
  }
}
