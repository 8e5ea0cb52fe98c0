import pg from 'pg';
import type { Tenant } from '../catalog/index.js';
import type { PreludeStatement } from '../session/index.js';
import { Lane, type ScanContext } from './lane.js';
import { keyColumnType, keyKind, keySql, type KeyKind } from './sort-key.js';

/** The column the merge key travels in (the last one; never part of a returned row). */
export const SORT_COLUMN = '"_tenantry_sort"';

/** How a scan reads its tenants: the cursor queries and, for batches, the column list. */
export interface ScanPlan {
  /** The query of one tenant's cursor (ordered by the key with `orderBy`). */
  readonly tenantQuery: string;
  /** The query of a batch's cursor (parameters $1–$7 of tenantry.scan_tenants); none: no batches. */
  readonly batchQuery?: string;
  /** The query each batch runs per tenant (parameter $4). */
  readonly batchInner?: string;
  /** Column names of a batch's rows. */
  readonly names?: readonly string[];
  /** How merge keys compare (with `orderBy`). */
  readonly keyKind?: KeyKind;
}

/** The user's query without trailing semicolons, so it can be wrapped in a subquery. */
export function cleanSql(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/** Settings of the generic tenant face (no tenant's own objects): the common result shape. */
function genericSettings(tenant: Tenant): PreludeStatement[] {
  return [
    {
      text: `SELECT pg_catalog.set_config('tenantry.tenant', '${Math.trunc(tenant.id)}', true), pg_catalog.set_config('search_path', 'tenantry_v', true)`,
    },
  ];
}

/**
 * Describes the query's columns (and the key's type) with `LIMIT 0`: first under the generic
 * tenant face when batches are possible, then in the first tenants' own contexts. Under
 * `onError: 'fail'` a tenant's error is the scan's error; under `partial` a few tenants are tried
 * before giving up on batches (each tenant's error then surfaces on its own).
 */
async function describe(
  ctx: ScanContext,
  probe: string,
  tenants: readonly Tenant[],
  batchable: boolean,
): Promise<{ fields: readonly pg.FieldDef[]; lane: Lane } | undefined> {
  const attempts: { tenant: Tenant; settings: readonly PreludeStatement[] }[] = [];
  const first = tenants.find((t) => t.isolation !== 'database');
  if (batchable && first) attempts.push({ tenant: first, settings: genericSettings(first) });
  for (const tenant of tenants.slice(0, ctx.partial ? 3 : 1)) {
    attempts.push({ tenant, settings: ctx.settingsOf(tenant) });
  }
  const text = `SELECT * FROM (\n${probe}\n) q LIMIT 0`;
  let lastError: unknown;
  for (const attempt of attempts) {
    const lane = new Lane(ctx.host);
    try {
      const session = await lane.session(attempt.tenant);
      const { fields } = await session.run(text, {
        settings: attempt.settings,
        guard: true,
        ...(ctx.values === undefined ? {} : { values: ctx.values }),
      });
      return { fields, lane };
    } catch (error) {
      lastError = error;
      await lane.close();
      if (!(error instanceof pg.DatabaseError)) throw error;
      if (!ctx.partial && attempt.settings !== attempts[0]?.settings) throw error;
    }
  }
  if (!ctx.partial) throw lastError;
  return undefined;
}

/** Type names of a column definition list for `oids`, qualified where not in pg_catalog. */
async function typeNames(lane: Lane, tenant: Tenant, oids: readonly number[]): Promise<string[]> {
  const session = await lane.session(tenant);
  const { rows } = await session.run(
    'SELECT pg_catalog.format_type(u.t, NULL) FROM pg_catalog.unnest($1::pg_catalog.oid[]) WITH ORDINALITY AS u(t, n) ORDER BY u.n',
    {
      values: [oids],
      settings: [{ text: "SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)" }],
    },
  );
  return rows.map((r) => String(r[0]));
}

/**
 * Plans a scan: describes the query once, picks the key's kind for `orderBy`, and builds the
 * per-tenant and batch cursor queries. Batches (one statement for many tenants of the catalog
 * database) are planned when `batchable` and the query has no parameters.
 */
export async function planScan(
  ctx: ScanContext,
  sql: string,
  orderBy: string | undefined,
  tenants: readonly Tenant[],
  batchable: boolean,
): Promise<ScanPlan> {
  const keyed = orderBy !== undefined;
  if (!keyed && !batchable) return { tenantQuery: sql };
  const probe = keyed ? `SELECT q.*, (${orderBy}) AS ${SORT_COLUMN} FROM (\n${sql}\n) q` : sql;
  const described = await describe(ctx, probe, tenants, batchable);
  if (!described)
    return keyed ? { tenantQuery: keyedQuery(sql, orderBy, 25), keyKind: 'text' } : { tenantQuery: sql };
  const { fields, lane } = described;
  try {
    const keyType = keyed ? (fields[fields.length - 1] as pg.FieldDef).dataTypeID : 0;
    const kind = keyed ? keyKind(keyType) : undefined;
    const tenantQuery = keyed ? keyedQuery(sql, orderBy, keyType) : sql;
    if (!batchable) return { tenantQuery, ...(kind ? { keyKind: kind } : {}) };
    const columns = keyed ? fields.slice(0, -1) : fields;
    const first = tenants.find((t) => t.isolation !== 'database') as Tenant;
    const types = await typeNames(
      lane,
      first,
      columns.map((f) => f.dataTypeID),
    );
    const list = [
      '"_tenant_id" pg_catalog.int4',
      ...types.map((type, i) => `"c${i + 1}" ${type}`),
      ...(kind ? [`${SORT_COLUMN} ${keyColumnType(kind)}`] : []),
    ].join(', ');
    const batchInner = keyed
      ? `SELECT q.*, ${keySql(orderBy, keyType)} AS ${SORT_COLUMN} FROM (\n${sql}\n) q`
      : sql;
    const batchQuery =
      'SELECT * FROM tenantry.scan_tenants($1::pg_catalog.int4[], $2::pg_catalog.text[], $3::pg_catalog.text[], ' +
      `$4::pg_catalog.int4[], $5::pg_catalog.text, $6::pg_catalog.bool, $7::pg_catalog.text) AS t(${list})` +
      (keyed ? ` ORDER BY ${SORT_COLUMN} NULLS LAST, "_tenant_id"` : '');
    return {
      tenantQuery,
      batchQuery,
      batchInner,
      names: columns.map((f) => f.name),
      ...(kind ? { keyKind: kind } : {}),
    };
  } finally {
    await lane.close();
  }
}

/** One tenant's query with its merge key, ordered by it. */
function keyedQuery(sql: string, orderBy: string, keyType: number): string {
  return (
    `SELECT q.*, ${keySql(orderBy, keyType)} AS ${SORT_COLUMN} FROM (\n${sql}\n) q ` +
    `ORDER BY ${SORT_COLUMN} NULLS LAST`
  );
}
