import type { Tenant } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import type { TenantDb } from '../session/index.js';

/** A row of a cross-tenant scan: the query's columns plus the tenant it came from (BUFFER-TENANT-ID). */
export type ScanRow = Record<string, unknown> & {
  readonly _tenant_id: number;
  readonly _tenant_name: string;
};

/** Options of a cross-tenant scan (seed 004's TENANT-WHERE). */
export interface CrossTenantOptions {
  /** The query run in every selected tenant (tenant-facing names; joins stay in one tenant). */
  readonly sql: string;
  readonly values?: readonly unknown[];
  /**
   * Which tenants: a SQL boolean over the tenant fields `id`, `name`, `kind`, `state`, e.g.
   * `id > 0 and name < 'M'` (default: every active regular tenant). It is evaluated on a
   * connection of the application role over a list of those four fields only.
   */
  readonly where?: string;
  /**
   * Merge order (a SQL expression over the query's columns, e.g. `name`); default: by tenant.
   * Keys compare as numbers, dates, or text in code-point order.
   */
  readonly orderBy?: string;
  /** Return a group's rows once (through its first member) instead of once per member. */
  readonly skipGroupDuplicates?: boolean;
  /** Tenants queried at once (default 4). */
  readonly concurrency?: number;
  /** `fail` (default): the first tenant error aborts; `partial`: skip it and report it. */
  readonly onError?: 'fail' | 'partial';
}

/** What a scan needs from its tenantry instance. */
export interface ScanHost {
  /** Regular tenants (id, name, kind, state) matching `where`, in id order. */
  selectTenants(where: string | undefined): Promise<Tenant[]>;
  /** Members of groups other than each group's first (lowest id) member. */
  laterGroupMembers(): Promise<Set<number>>;
  /** Runs `fn` as `tenant` with the prelude options of a scan. */
  asTenant<T>(tenant: Tenant, skipGroups: boolean, fn: (db: TenantDb) => Promise<T>): Promise<T>;
}

/** Failures of a `partial` scan. */
export interface ScanFailure {
  readonly tenant: string;
  readonly error: Error;
}

interface TenantRows {
  readonly tenant: Tenant;
  readonly rows: Record<string, unknown>[];
  readonly keys: unknown[];
}

function compare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (a instanceof Date && b instanceof Date) return a.getTime() - b.getTime();
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = asText(a);
  const y = asText(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return value.toString();
  return JSON.stringify(value) ?? '';
}

/**
 * Runs a query in each selected tenant, with bounded concurrency, and yields its rows tagged
 * `_tenant_id` / `_tenant_name`: by tenant, or merged by `orderBy` (k-way merge of the tenants'
 * ordered results). `failures` collects skipped tenants under `onError: 'partial'`.
 */
export async function* crossTenantScan(
  host: ScanHost,
  options: CrossTenantOptions,
  failures: ScanFailure[] = [],
): AsyncGenerator<ScanRow> {
  if (typeof options.sql !== 'string' || options.sql.trim() === '') {
    throw new TenantryError('INVALID_ARGUMENT', { what: 'scan', problem: 'sql is required' });
  }
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TenantryError('INVALID_ARGUMENT', {
      what: 'concurrency',
      problem: 'expected a positive integer',
    });
  }
  const tenants = await host.selectTenants(options.where);
  const skip = options.skipGroupDuplicates === true ? await host.laterGroupMembers() : new Set<number>();
  // With orderBy, each tenant's rows carry their sort key; they are sorted and merged here with one
  // comparator (code-point order for text), so the merge never disagrees with a collation.
  const text = options.orderBy
    ? `SELECT q.*, (${options.orderBy}) AS "_tenantry_sort" FROM (${options.sql}) q`
    : options.sql;
  const results: (TenantRows | undefined)[] = new Array<TenantRows | undefined>(tenants.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tenants.length) {
      const index = next++;
      const tenant = tenants[index] as Tenant;
      try {
        const result = await host.asTenant(tenant, skip.has(tenant.id), (db) =>
          db.query<Record<string, unknown>>(text, options.values),
        );
        let rows = result.rows;
        let keys: unknown[] = [];
        if (options.orderBy) {
          rows = [...rows].sort((a, b) => compare(a._tenantry_sort, b._tenantry_sort));
          keys = rows.map((r) => r._tenantry_sort);
          for (const row of rows) delete row._tenantry_sort;
        }
        results[index] = { tenant, rows, keys };
      } catch (error) {
        if (options.onError !== 'partial') throw error;
        failures.push({
          tenant: tenant.name,
          error: error instanceof Error ? error : new Error(String(error)),
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, tenants.length)) }, worker));
  const done = results.filter((r): r is TenantRows => r !== undefined);
  const tag = (r: TenantRows, row: Record<string, unknown>): ScanRow => ({
    ...row,
    _tenant_id: r.tenant.id,
    _tenant_name: r.tenant.name,
  });
  if (!options.orderBy) {
    for (const r of done) for (const row of r.rows) yield tag(r, row);
    return;
  }
  const cursors = done.map(() => 0);
  for (;;) {
    let best = -1;
    for (let i = 0; i < done.length; i++) {
      const r = done[i] as TenantRows;
      if ((cursors[i] as number) >= r.rows.length) continue;
      if (
        best < 0 ||
        compare(r.keys[cursors[i] as number], (done[best] as TenantRows).keys[cursors[best] as number]) < 0
      ) {
        best = i;
      }
    }
    if (best < 0) return;
    const r = done[best] as TenantRows;
    yield tag(r, r.rows[cursors[best] as number] as Record<string, unknown>);
    cursors[best] = (cursors[best] as number) + 1;
  }
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
