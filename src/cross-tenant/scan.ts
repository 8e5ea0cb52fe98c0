import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { ScanContext, groupSkips, type ScanHost } from './lane.js';
import { mergeScan } from './merge.js';
import { scanInTenantOrder } from './order.js';
import { cleanSql, planScan } from './plan.js';
import { batchable, tenantOrderUnits } from './units.js';

export type { ScanHost } from './lane.js';

/** A row of a cross-tenant scan: the query's columns plus the tenant it came from (BUFFER-TENANT-ID). */
export type ScanRow = Record<string, unknown> & {
  readonly _tenant_id: number;
  readonly _tenant_name: string;
};

/** Options of a cross-tenant scan (seed 004's TENANT-WHERE). */
export interface CrossTenantOptions {
  /**
   * The query run in every selected tenant: one SELECT (or VALUES, TABLE, WITH … SELECT) in
   * tenant-facing names; joins stay within the tenant. It runs read-only.
   */
  readonly sql: string;
  readonly values?: readonly unknown[];
  /**
   * Which tenants: a SQL boolean over the tenant fields `id`, `name`, `kind`, `state`, e.g.
   * `id > 0 and name < 'M'` (default: every active regular tenant). It is evaluated on a
   * connection of the application role over a list of those four fields only.
   */
  readonly where?: string;
  /**
   * Merge order: a SQL expression over the query's columns, e.g. `name` (ascending, NULLs
   * last); default: by tenant. Numbers, dates and times compare by value, booleans false first,
   * text in code-point order (the "C" collation); other types by their text form.
   */
  readonly orderBy?: string;
  /** Return a group's rows once (through its first member) instead of once per member. */
  readonly skipGroupDuplicates?: boolean;
  /** Connections the scan holds at most (default 4; never more than the server's budget). */
  readonly concurrency?: number;
  /** Rows fetched per round trip and stream (default 500): memory holds at most this per stream. */
  readonly fetchSize?: number;
  /**
   * Read shared and schema tenants in batches, one statement per batch (default true; only for
   * queries without `values`). `false` reads every tenant with a query of its own.
   */
  readonly batch?: boolean;
  /** `fail` (default): the first tenant error aborts; `partial`: skip it and report it. */
  readonly onError?: 'fail' | 'partial';
}

/** Failures of a `partial` scan. */
export interface ScanFailure {
  readonly tenant: string;
  readonly error: Error;
}

/** Tenants per batch statement in tenant order (the first rows wait for one batch). */
const ORDER_BATCH = 100;
/** Tenants per batch statement in a merge, at most. */
const MERGE_BATCH = 1000;

function positive(value: number | undefined, fallback: number, what: string): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1) {
    throw new TenantryError('INVALID_ARGUMENT', { what, problem: 'expected a positive integer' });
  }
  return n;
}

/**
 * Runs a query in each selected tenant and yields its rows tagged `_tenant_id` / `_tenant_name`,
 * streaming: by tenant (default), or merged by `orderBy` (a k-way merge of streams that
 * PostgreSQL sorts). Rows are read through cursors in READ ONLY transactions, `fetchSize` at a
 * time, on at most `concurrency` connections. Shared and schema tenants are read in batches —
 * one statement per batch of tenants (tenantry.scan_tenants(), which runs the query once per
 * tenant under that tenant's settings) — unless the query has parameters. `failures` collects
 * skipped tenants under `onError: 'partial'`.
 */
export async function* crossTenantScan(
  host: ScanHost,
  options: CrossTenantOptions,
  failures: ScanFailure[] = [],
): AsyncGenerator<ScanRow> {
  if (typeof options.sql !== 'string' || options.sql.trim() === '') {
    throw new TenantryError('INVALID_ARGUMENT', { what: 'scan', problem: 'sql is required' });
  }
  const concurrency = positive(options.concurrency, 4, 'concurrency');
  const fetchSize = positive(options.fetchSize, 500, 'fetchSize');
  const orderBy = options.orderBy?.trim() ? options.orderBy : undefined;
  const tenants = await host.selectTenants(options.where);
  if (tenants.length === 0) return;
  const skip =
    options.skipGroupDuplicates === true
      ? groupSkips(await host.groupMemberships(tenants.map((t) => t.id)))
      : new Map<number, string>();
  const values = options.values !== undefined && options.values.length > 0 ? options.values : undefined;
  const ctx = new ScanContext({
    host,
    values,
    skip,
    partial: options.onError === 'partial',
    failures,
    fetchSize,
    lanes: Math.max(1, Math.min(concurrency, host.connectionBudget())),
  });
  const sql = cleanSql(options.sql);
  const batches = options.batch !== false && values === undefined && tenants.filter(batchable).length > 1;
  const plan = await planScan(ctx, sql, orderBy, tenants, batches);
  const chunks =
    orderBy !== undefined
      ? mergeScan(ctx, plan, tenants, MERGE_BATCH)
      : scanInTenantOrder(ctx, plan, tenantOrderUnits(tenants, plan.batchQuery !== undefined, ORDER_BATCH));
  for await (const chunk of chunks) for (const row of chunk) yield row;
}

/** The tenant-selection query: `where` over the four tenant fields, on the application role. */
export function tenantSelection(
  tenants: readonly Tenant[],
  where: string | undefined,
): { text: string; values: unknown[] } {
  const values = [
    tenants.map((t) => t.id),
    tenants.map((t) => t.name),
    tenants.map((t) => t.kind),
    tenants.map((t) => t.state),
  ];
  const condition = where && where.trim() !== '' ? where : 'true';
  return {
    text: `SELECT id FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS t(id, name, kind, state)
           WHERE (${condition}) ORDER BY id`,
    values,
  };
}
