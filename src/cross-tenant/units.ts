import { tenantSearchPath, type Tenant } from '../catalog/index.js';
import { isConnectionError } from '../pool/index.js';
import type { Lane, ScanContext } from './lane.js';
import type { ScanPlan } from './plan.js';
import { keyNormalizer } from './sort-key.js';
import { CursorStream } from './stream.js';

/** Part of a scan: a batch of catalog-database tenants queried in one statement, or one tenant. */
export type ScanUnit =
  | { readonly kind: 'batch'; readonly tenants: readonly Tenant[] }
  | { readonly kind: 'single'; readonly tenant: Tenant };

/** The first tenant id of a unit. */
export function unitStart(unit: ScanUnit): number {
  return unit.kind === 'single' ? unit.tenant.id : (unit.tenants[0] as Tenant).id;
}

let reports = 0;

/** Whether rows carry a merge key, and how keys are mapped as they arrive. */
function keying(plan: ScanPlan): { keyed: boolean; normalizeKey?: (key: unknown) => unknown } {
  if (plan.keyKind === undefined) return { keyed: false };
  const normalizeKey = keyNormalizer(plan.keyKind);
  return normalizeKey ? { keyed: true, normalizeKey } : { keyed: true };
}

/** Whether a tenant can be part of a batch (its rows are in the catalog database). */
export function batchable(tenant: Tenant): boolean {
  return tenant.isolation !== 'database';
}

/**
 * Opens one tenant's stream on `lane` (reading `fetchSize` rows at a time). Under `onError: 'partial'` a failing tenant is recorded
 * and answers `undefined`; under `fail` its error is thrown.
 */
export async function openSingle(
  ctx: ScanContext,
  plan: ScanPlan,
  lane: Lane,
  tenant: Tenant,
  fetchSize = ctx.fetchSize,
): Promise<CursorStream | undefined> {
  try {
    ctx.host.check(tenant);
    const session = await lane.session(tenant);
    const stream = new CursorStream({
      session,
      query: plan.tenantQuery,
      ...(ctx.values === undefined ? {} : { values: ctx.values }),
      settings: ctx.settingsOf(tenant),
      guard: ctx.partial,
      fetchSize,
      tenant,
      ...keying(plan),
    });
    await stream.open();
    return stream;
  } catch (error) {
    ctx.fail(tenant, error);
    return undefined;
  }
}

/** What opening a batch gave: its stream, and the tenants to scan on their own instead. */
export interface OpenedBatch {
  readonly stream?: CursorStream;
  readonly fallbacks: readonly Tenant[];
}

/**
 * Opens a batch's stream on `lane`: one statement, tenantry.scan_tenants(), for all its
 * tenants. Tenants whose result has another shape (their own views or columns) — and, under
 * `partial`, tenants that fail — come back as fallbacks. When the statement itself cannot be
 * declared (a column type no column definition list accepts), every tenant falls back.
 */
export async function openBatch(
  ctx: ScanContext,
  plan: ScanPlan,
  lane: Lane,
  tenants: readonly Tenant[],
): Promise<OpenedBatch> {
  const usable: Tenant[] = [];
  for (const tenant of tenants) {
    try {
      ctx.host.check(tenant);
      usable.push(tenant);
    } catch (error) {
      ctx.fail(tenant, error);
    }
  }
  const first = usable[0];
  if (!first || plan.batchQuery === undefined || plan.batchInner === undefined) {
    return { fallbacks: usable };
  }
  const session = await lane.session(first);
  for (const tenant of usable) if (tenant.schemaName) session.noteSchema(tenant.schemaName);
  const report = `tenantry.scan_r${++reports}`;
  const byId = new Map(usable.map((t) => [t.id, t]));
  const stream = new CursorStream({
    session,
    query: plan.batchQuery,
    values: [
      usable.map((t) => t.id),
      usable.map((t) => tenantSearchPath(t.uuid)),
      usable.map((t) => ctx.skips(t)),
      usable.map((t) => t.placementEpoch),
      plan.batchInner,
      ctx.partial,
      report,
    ],
    settings: [],
    guard: true,
    fetchSize: ctx.fetchSize,
    tenants: byId,
    ...(plan.names === undefined ? {} : { names: plan.names }),
    ...keying(plan),
    report,
  });
  try {
    await stream.declare();
  } catch (error) {
    if (isConnectionError(error)) throw error;
    return { fallbacks: usable };
  }
  try {
    await stream.start();
  } catch (error) {
    // Under `fail`, the query failed in one of the tenants: that is the scan's error.
    if (!ctx.partial || isConnectionError(error)) throw error;
    return { fallbacks: usable };
  }
  return { stream, fallbacks: stream.fallbacks.map((id) => byId.get(id) as Tenant) };
}

/**
 * Splits tenants (in id order) into units: runs of consecutive batchable tenants of at most
 * `batchSize`, and single tenants. Without batches every tenant is a unit of its own.
 */
export function tenantOrderUnits(
  tenants: readonly Tenant[],
  batches: boolean,
  batchSize: number,
): ScanUnit[] {
  const units: ScanUnit[] = [];
  let run: Tenant[] = [];
  const flush = (): void => {
    if (run.length === 1) units.push({ kind: 'single', tenant: run[0] as Tenant });
    else if (run.length > 1) units.push({ kind: 'batch', tenants: run });
    run = [];
  };
  for (const tenant of tenants) {
    if (batches && batchable(tenant)) {
      run.push(tenant);
      if (run.length >= batchSize) flush();
    } else {
      flush();
      units.push({ kind: 'single', tenant });
    }
  }
  flush();
  return units;
}
