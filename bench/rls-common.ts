/**
 * The workload shared by the row-level security benchmarks (rls-overhead, rls-alternatives):
 * two identical tables of 1,000,000 rows (1,000 tenants × 1,000 rows, same physical order, same
 * indexes) — `public.event`, multi-tenant (RLS), and `public.event_plain`, without RLS — the
 * query shapes, and transactions that set the tenant once and run many queries.
 */
import pg from 'pg';
import type { Tenantry } from '../src/index.js';
import { alternate, ignoreIdleError, median, randomInt, throughput } from './harness.js';

export const TENANTS = 1_000;
export const ROWS_PER_TENANT = 1_000;
export const KINDS = 10;
/** Connections per side, each running its own transactions concurrently. */
export const CONNECTIONS = 2;
/** Queries per transaction: the tenant is set once, so round trips and BEGIN/COMMIT hardly count. */
export const QUERIES_PER_TX = 50;

export type Protocol = 'prepared' | 'simple';
export const protocols: readonly Protocol[] = ['prepared', 'simple'];

/** Baseline (no RLS, hand-written tenant predicate) or a table with a tenant policy. */
export type Who = 'baseline' | 'rls';

/** One query shape: its SQL on each side, a random parameter, and a check of the result. */
export interface Shape {
  readonly name: string;
  /** SQL with `$1` = tenant id and `$2` = the shape's parameter (when it has one). */
  readonly baselineSql: string;
  /** SQL with `$1` = the shape's parameter (when it has one); no tenant predicate. */
  readonly rlsSql: string;
  readonly param: () => number;
  readonly check: (rows: readonly Record<string, unknown>[], tenant: number, param: number) => boolean;
}

export const shapes: readonly Shape[] = [
  {
    name: 'point',
    baselineSql: 'SELECT payload FROM public.event_plain WHERE tenant_id = $1 AND id = $2',
    rlsSql: 'SELECT payload FROM public.event WHERE id = $1',
    param: () => randomInt(1, ROWS_PER_TENANT),
    check: (rows, tenant, id) => rows.length === 1 && rows[0]?.payload === `event ${tenant}-${id}`,
  },
  {
    name: 'range',
    baselineSql:
      'SELECT id, kind, payload FROM public.event_plain WHERE tenant_id = $1 AND id BETWEEN $2 AND $2 + 99',
    rlsSql: 'SELECT id, kind, payload FROM public.event WHERE id BETWEEN $1 AND $1 + 99',
    param: () => randomInt(1, ROWS_PER_TENANT - 99),
    check: (rows, tenant, first) =>
      rows.length === 100 &&
      rows.every((row) => (row.payload as string).startsWith(`event ${tenant}-`)) &&
      first > 0,
  },
  {
    name: 'kind',
    baselineSql: 'SELECT id, payload FROM public.event_plain WHERE tenant_id = $1 AND kind = $2',
    rlsSql: 'SELECT id, payload FROM public.event WHERE kind = $1',
    param: () => randomInt(0, KINDS - 1),
    check: (rows, tenant) =>
      rows.length === ROWS_PER_TENANT / KINDS &&
      rows.every((row) => (row.payload as string).startsWith(`event ${tenant}-`)),
  },
  {
    name: 'count',
    baselineSql: 'SELECT count(*) AS n FROM public.event_plain WHERE tenant_id = $1',
    rlsSql: 'SELECT count(*) AS n FROM public.event',
    param: () => 0,
    check: (rows) => rows.length === 1 && rows[0]?.n === String(ROWS_PER_TENANT),
  },
];

/**
 * The query of `shape` for `who`, in `protocol`, for `tenant` and `param`. Prepared: a named
 * statement (parsed once per connection, then Bind/Execute only). Simple: literals in the text.
 */
export function queryOf(
  shape: Shape,
  who: Who,
  protocol: Protocol,
  tenant: number,
  param: number,
): pg.QueryConfig {
  const usesParam = shape.rlsSql.includes('$1');
  if (protocol === 'prepared') {
    if (who === 'baseline') {
      return {
        name: `baseline_${shape.name}`,
        text: shape.baselineSql,
        values: usesParam ? [tenant, param] : [tenant],
      };
    }
    return { name: `rls_${shape.name}`, text: shape.rlsSql, values: usesParam ? [param] : [] };
  }
  const text =
    who === 'baseline'
      ? shape.baselineSql.replaceAll('$1', String(tenant)).replaceAll('$2', String(param))
      : shape.rlsSql.replaceAll('$1', String(param));
  return { text };
}

/**
 * One transaction: BEGIN and the transaction-local tenant setting (one simple query, the same on
 * both sides), {@link QUERIES_PER_TX} checked queries of `shape` for a random tenant, COMMIT.
 * Returns the number of shape queries run.
 */
export async function transaction(
  client: pg.Client,
  shape: Shape,
  who: Who,
  protocol: Protocol,
  tenants: readonly number[],
): Promise<number> {
  const tenant = tenants[randomInt(0, tenants.length - 1)]!;
  await client.query(`BEGIN; SELECT set_config('tenantry.tenant', '${tenant}', true)`);
  try {
    for (let i = 0; i < QUERIES_PER_TX; i++) {
      const param = shape.param();
      const { rows } = await client.query<Record<string, unknown>>(
        queryOf(shape, who, protocol, tenant, param),
      );
      if (!shape.check(rows, tenant, param)) {
        throw new Error(
          `${who} ${shape.name} (${protocol}) for tenant ${tenant}, param ${param}: unexpected rows ` +
            JSON.stringify(rows).slice(0, 200),
        );
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return QUERIES_PER_TX;
}

/** Opens one plain connection. */
export async function connect(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', ignoreIdleError);
  await client.connect();
  return client;
}

/**
 * Creates the tenants and both tables (loaded as the superuser before any policy exists),
 * declares `public.event` multi-tenant, lets `readerRole` (created here) SELECT
 * `public.event_plain`, and vacuums until every page is all-visible (index-only scans then
 * skip the heap on both sides alike). Returns the tenant ids.
 */
export async function loadEventTables(
  tenantry: Tenantry,
  readerRole: string,
  readerPassword: string,
): Promise<number[]> {
  const op = tenantry.operator;
  // The tenants straight into the catalog: one statement instead of 1,000 create() calls.
  await op.query(
    `INSERT INTO tenantry.tenant (id, name, kind)
     SELECT nextval('tenantry.regular_tenant_id'), 'tenant' || lpad(g::text, 4, '0'), 'regular'
     FROM generate_series(1, $1::int) AS g`,
    [TENANTS],
  );
  await tenantry.catalog.reload();
  const { rows } = await op.query<{ id: number }>(
    "SELECT id FROM tenantry.tenant WHERE kind = 'regular' ORDER BY id",
  );
  for (const table of ['event', 'event_plain']) {
    await op.query(
      `CREATE TABLE public.${table} (
         tenant_id int NOT NULL, id int NOT NULL, kind int NOT NULL, payload text NOT NULL,
         PRIMARY KEY (tenant_id, id))`,
    );
    await op.query(
      `INSERT INTO public.${table} (tenant_id, id, kind, payload)
       SELECT t.id, i, i % ${KINDS}, 'event ' || t.id || '-' || i
       FROM tenantry.tenant t CROSS JOIN generate_series(1, ${ROWS_PER_TENANT}) AS i
       WHERE t.kind = 'regular'
       ORDER BY t.id, i`,
    );
    await op.query(`CREATE INDEX ${table}_tenant_kind ON public.${table} (tenant_id, kind)`);
  }
  await tenantry.tables.multiTenant('public.event');
  await op.query(
    `CREATE ROLE ${pg.escapeIdentifier(readerRole)} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD ${pg.escapeLiteral(readerPassword)}`,
  );
  // multiTenant() may close schema public to roles other than tenantry's own.
  await op.query(`GRANT USAGE ON SCHEMA public TO ${pg.escapeIdentifier(readerRole)}`);
  await op.query(`GRANT SELECT ON public.event_plain TO ${pg.escapeIdentifier(readerRole)}`);
  for (const table of ['event', 'event_plain']) {
    // With synchronous_commit=off a just-committed load may not count as visible to all yet;
    // vacuum again until the visibility map covers the table.
    for (let attempt = 1; ; attempt++) {
      await op.query(`VACUUM (FREEZE, ANALYZE) public.${table}`);
      const { rows: vm } = await op.query<{ pages: number; visible: number }>(
        `SELECT relpages AS pages, relallvisible AS visible FROM pg_class WHERE oid = 'public.${table}'::regclass`,
      );
      if ((vm[0]?.visible ?? 0) >= (vm[0]?.pages ?? 0) || attempt >= 5) break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
  await op.query('CHECKPOINT');
  return rows.map((row) => row.id);
}

/** The policies of `public.event`, one readable line each (tenantry may add more than one). */
export async function describePolicies(tenantry: Tenantry): Promise<string[]> {
  const { rows } = await tenantry.operator.query<{ line: string }>(
    `SELECT format('%s (%s) USING %s', policyname, lower(permissive), qual) AS line
     FROM pg_policies WHERE schemaname = 'public' AND tablename = 'event' ORDER BY policyname`,
  );
  return rows.map((row) => row.line);
}

/** The app role's password (readable by the superuser). */
export async function appPassword(tenantry: Tenantry): Promise<string> {
  const { rows } = await tenantry.operator.query<{ value: string }>(
    "SELECT value FROM tenantry.secret WHERE name = 'app_password'",
  );
  const value = rows[0]?.value;
  if (value === undefined) throw new Error('tenantry.secret has no app_password');
  return value;
}

/** Untimed queries after a side's `before()` hook (plans are rebuilt after a policy change). */
const settleMs = 60;

/** A measured side: its connections and who they query as. */
export interface RlsSide {
  readonly name: string;
  readonly who: Who;
  readonly clients: readonly pg.Client[];
  /** Runs before each of this side's rounds (e.g. switches the policy); not timed. */
  readonly before?: () => Promise<void>;
}

/**
 * Measures `shape` in `protocol` for every side: a warm-up, then `rounds` rounds in rotating
 * order; returns each side's median queries/s and its per-round figures.
 */
export async function measureCase(
  sides: readonly RlsSide[],
  shape: Shape,
  protocol: Protocol,
  tenants: readonly number[],
  timing: { rounds: number; roundMs: number; warmupMs: number },
): Promise<Map<string, { median: number; rounds: number[] }>> {
  const rate = (side: RlsSide, ms: number) =>
    throughput(side.clients.length, ms, (worker) =>
      transaction(side.clients[worker]!, shape, side.who, protocol, tenants),
    );
  const runSide = (side: RlsSide, ms: number) => async () => {
    if (side.before) {
      await side.before();
      await rate(side, settleMs); // re-plans and warms up after the switch, untimed
    }
    return rate(side, ms);
  };
  for (const side of sides) await runSide(side, timing.warmupMs)();
  const results = await alternate(
    timing.rounds,
    sides.map((side) => ({ name: side.name, run: runSide(side, timing.roundMs) })),
  );
  return new Map(
    sides.map((side) => {
      const rates = results.get(side.name)!;
      return [side.name, { median: median(rates), rounds: rates.map(Math.round) }];
    }),
  );
}

/** Prints EXPLAIN ANALYZE of every shape on both sides: custom plan (literals) and generic plan. */
export async function explainShapes(clients: Record<Who, pg.Client>, tenant: number): Promise<void> {
  for (const shape of shapes) {
    for (const who of ['baseline', 'rls'] as const) {
      const client = clients[who];
      const param = shape.param();
      const literal = queryOf(shape, who, 'simple', tenant, param).text;
      const prepared = queryOf(shape, who, 'prepared', tenant, param);
      const values = prepared.values ?? [];
      await client.query(`BEGIN; SELECT set_config('tenantry.tenant', '${tenant}', true)`);
      try {
        const custom = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${literal}`,
        );
        const types = values.map(() => 'int').join(', ');
        await client.query(`PREPARE explain_me${types ? `(${types})` : ''} AS ${prepared.text}`);
        await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
        const args = values.map(String).join(', ');
        const generic = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE explain_me${args ? `(${args})` : ''}`,
        );
        console.log(`--- ${shape.name}, ${who}: ${literal}`);
        for (const row of custom.rows) console.log(`    ${row['QUERY PLAN']}`);
        console.log(`--- ${shape.name}, ${who}, generic plan of the prepared statement:`);
        for (const row of generic.rows) console.log(`    ${row['QUERY PLAN']}`);
      } finally {
        await client.query('ROLLBACK');
        await client.query('DEALLOCATE explain_me').catch(() => undefined);
      }
    }
  }
}
