/**
 * rls-alternatives: the rls-overhead workload with other forms of the tenant policy, to find
 * what the installed policy's time goes to and which form is cheaper. It runs in its own
 * scratch database: the alternative functions live in schema `bench_alt`, and the policy of
 * `public.event` is switched with ALTER POLICY before each measured round (tenantry's own
 * functions are left as installed).
 *
 * Variants (policy USING and WITH CHECK expression):
 * - installed:         tenantry_isolation as installed (catalog version 26: for the app role the
 *                      setting read inline, regular tenants without a function call, anything else
 *                      through tenantry.segment_tenant(), which checks the allocation)
 * - version9:          the form installed before catalog version 26: a validating regular
 *                      expression and the allocation check in a sub-select in FROM
 * - current:           tenant_id = (SELECT tenantry.current_tenant()): PL/pgSQL, SECURITY
 *                      DEFINER, SET search_path, looks the tenant up in the catalog
 * - plpgsql_definer:   the same body as a PL/pgSQL function (plans cached per session), still
 *                      SECURITY DEFINER with SET search_path
 * - parse_definer:     SECURITY DEFINER and SET search_path kept, no lookup (parses the setting)
 * - parse_set:         no SECURITY DEFINER, SET search_path kept, no lookup
 * - inline_initplan:   an inlinable SQL function (no SECURITY DEFINER, no SET, no FROM, no
 *                      sub-select) that validates and casts the setting, called as (SELECT f())
 * - inline_app_branch: inlinable too: for the app role (session_user) it parses the setting; any
 *                      other role (tenant login roles…) falls through to tenantry.current_tenant();
 *                      called as (SELECT f())
 * - inline:            the parse-only inlinable function called directly: tenant_id = f()
 * - expr_initplan:     no function: the validating expression written into the policy, as
 *                      tenant_id = (SELECT <expression>)
 * - expr_app_branch:   no function of its own: tenant_id =
 *                      (SELECT CASE WHEN session_user = <app role> THEN <expression>
 *                                   ELSE tenantry.current_tenant() END)
 *   (the *_app_* variants answer as `current` does for every role except that, for the app role,
 *   the setting is not looked up in tenantry.tenant: the tenant foreign key already makes an
 *   unknown id match no rows and fail on insert)
 * - expr_app_direct:   the same without the InitPlan: tenant_id = CASE WHEN session_user =
 *                      <app role> THEN <expression> ELSE (SELECT tenantry.current_tenant()) END
 * - setting_initplan:  the floor of any sub-select form for the app role: tenant_id =
 *                      (SELECT NULLIF(current_setting('tenantry.tenant', true), '')::integer)
 * - app_regular_only:  the installed form's app-role branch alone (regular tenants only: no
 *                      role test and no fallback to tenantry.segment_tenant())
 * - raw_setting:       tenant_id = NULLIF(current_setting('tenantry.tenant', true), '')::integer
 * - installed_alone, raw_setting_alone (only when the table has other tenantry policies, e.g. the
 *                      restrictive allocation policy): `installed` and `raw_setting` with those other
 *                      policies turned into USING (true), to separate their cost
 *
 * First, each variant's server-side cost of a point lookup is timed inside PostgreSQL (PL/pgSQL
 * loops: no client, no network); then the rls-overhead workload runs for every variant.
 *
 * Baseline as in rls-overhead: `public.event_plain`, no RLS, hand-written tenant predicate.
 * `--quick` measures the point shape only; `--explain` prints each variant's plan;
 * `TENANTRY_BENCH_VARIANTS=setting_initplan,raw_setting` measures only those (and `installed`).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTenantry, type Tenantry } from '../src/index.js';
import {
  fmtRate,
  loadAverage,
  median,
  openDatabase,
  parseArgs,
  printResult,
  roleNames,
  round,
  urlAs,
} from './harness.js';
import {
  CONNECTIONS,
  QUERIES_PER_TX,
  ROWS_PER_TENANT,
  appPassword,
  connect,
  describePolicies,
  loadEventTables,
  measureCase,
  protocols,
  queryOf,
  shapes,
  type Protocol,
  type RlsSide,
} from './rls-common.js';

const BENCH = 'rls-alternatives';
const GOALS: Record<Protocol, number> = { prepared: 0.97, simple: 0.93 };

/** Validates like tenantry.current_tenant(): '0' or an integer of at most 9 digits, else NULL. */
const PARSE_BODY = `
  SELECT CASE WHEN s OPERATOR(pg_catalog.~) '^(0|-?[1-9][0-9]{0,8})$' THEN s::pg_catalog.int4 END
  FROM (SELECT pg_catalog.current_setting('tenantry.tenant', true) AS s) AS setting`;

/** The same check as one expression (no FROM, no sub-select), so the planner can inline it. */
const INLINE_EXPRESSION =
  "CASE WHEN pg_catalog.current_setting('tenantry.tenant', true) OPERATOR(pg_catalog.~) '^(0|-?[1-9][0-9]{0,8})$' " +
  "THEN pg_catalog.current_setting('tenantry.tenant', true)::pg_catalog.int4 END";
const INLINE_BODY = `SELECT ${INLINE_EXPRESSION}`;

interface Variant {
  readonly name: string;
  readonly policy: string;
  /** Turns tenantry's other policies on the table (if any) into USING (true) for this variant. */
  readonly othersOff?: boolean;
}

/** A policy on public.event other than tenantry_isolation, as installed. */
interface OtherPolicy {
  readonly name: string;
  readonly using: string | null;
  readonly check: string | null;
}

async function otherPolicies(tenantry: Tenantry): Promise<OtherPolicy[]> {
  const { rows } = await tenantry.operator.query<OtherPolicy>(
    `SELECT policyname AS name, qual AS "using", with_check AS "check" FROM pg_policies
     WHERE schemaname = 'public' AND tablename = 'event' AND policyname <> 'tenantry_isolation'`,
  );
  return rows;
}

/** The USING expression of tenantry_isolation on public.event, as installed. */
async function installedPolicy(tenantry: Tenantry): Promise<string> {
  const { rows } = await tenantry.operator.query<{ qual: string }>(
    `SELECT qual FROM pg_policies
     WHERE schemaname = 'public' AND tablename = 'event' AND policyname = 'tenantry_isolation'`,
  );
  const qual = rows[0]?.qual;
  if (qual === undefined) throw new Error('public.event has no tenantry_isolation policy');
  return qual;
}

/** The policy variants; `app` is the app role's name as a SQL literal. */
function variantsFor(app: string, installed: string): Variant[] {
  const appBranch = (otherwise: string) =>
    `CASE WHEN SESSION_USER OPERATOR(pg_catalog.=) ${app}::pg_catalog.name THEN ${INLINE_EXPRESSION} ELSE ${otherwise} END`;
  return [
    { name: 'installed', policy: installed },
    {
      name: 'version9',
      policy:
        "tenant_id = (SELECT CASE WHEN x.t > 0 OR tenantry.allocated('public', 'event') THEN x.t END " +
        `FROM (SELECT ${appBranch('tenantry.current_tenant()')} AS t) x)`,
    },
    { name: 'current', policy: 'tenant_id = (SELECT tenantry.current_tenant())' },
    { name: 'plpgsql_definer', policy: 'tenant_id = (SELECT bench_alt.plpgsql_definer())' },
    { name: 'parse_definer', policy: 'tenant_id = (SELECT bench_alt.parse_definer())' },
    { name: 'parse_set', policy: 'tenant_id = (SELECT bench_alt.parse_set())' },
    { name: 'inline_initplan', policy: 'tenant_id = (SELECT bench_alt.parse_inline())' },
    { name: 'inline_app_branch', policy: 'tenant_id = (SELECT bench_alt.inline_app_branch())' },
    { name: 'inline', policy: 'tenant_id = bench_alt.parse_inline()' },
    { name: 'expr_initplan', policy: `tenant_id = (SELECT ${INLINE_EXPRESSION})` },
    { name: 'expr_app_branch', policy: `tenant_id = (SELECT ${appBranch('tenantry.current_tenant()')})` },
    { name: 'expr_app_direct', policy: `tenant_id = ${appBranch('(SELECT tenantry.current_tenant())')}` },
    {
      name: 'setting_initplan',
      policy: "tenant_id = (SELECT NULLIF(pg_catalog.current_setting('tenantry.tenant', true), '')::integer)",
    },
    {
      name: 'app_regular_only',
      policy:
        "tenant_id = (SELECT NULLIF(GREATEST(NULLIF(pg_catalog.current_setting('tenantry.tenant', true), '')::integer, 0), 0))",
    },
    {
      name: 'raw_setting',
      policy: "tenant_id = NULLIF(pg_catalog.current_setting('tenantry.tenant', true), '')::integer",
    },
  ];
}

/**
 * A PL/pgSQL body answering as tenantry.current_tenant() does: its own body when it is already
 * PL/pgSQL (it is since the lookup moved into PL/pgSQL), else its SQL query wrapped in RETURN.
 */
function plpgsqlBody(body: string): string {
  return /^\s*(DECLARE|BEGIN)\b/i.test(body)
    ? body
    : ` BEGIN RETURN (${body.trim().replace(/;$/, '')}); END `;
}

/** Creates the alternative functions in schema bench_alt (owned like tenantry's own). */
async function createAlternatives(tenantry: Tenantry): Promise<void> {
  const { app, owner } = tenantry.roles;
  const { rows } = await tenantry.operator.query<{ body: string }>(
    "SELECT prosrc AS body FROM pg_proc WHERE oid = 'tenantry.current_tenant()'::regprocedure",
  );
  const currentBody = rows[0]?.body;
  if (currentBody === undefined) throw new Error('tenantry.current_tenant() not found');
  const appLiteral = pg.escapeLiteral(app);
  await tenantry.operator.query(
    `CREATE SCHEMA bench_alt AUTHORIZATION ${pg.escapeIdentifier(owner)};
     GRANT USAGE ON SCHEMA bench_alt TO ${pg.escapeIdentifier(app)};
     SET LOCAL ROLE ${pg.escapeIdentifier(owner)};
     CREATE FUNCTION bench_alt.plpgsql_definer() RETURNS integer
       LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
       AS $body$${plpgsqlBody(currentBody)}$body$;
     CREATE FUNCTION bench_alt.parse_definer() RETURNS integer
       LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
       AS $body$${PARSE_BODY}$body$;
     CREATE FUNCTION bench_alt.parse_set() RETURNS integer
       LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
       AS $body$${PARSE_BODY}$body$;
     CREATE FUNCTION bench_alt.parse_inline() RETURNS integer
       LANGUAGE sql STABLE PARALLEL SAFE AS $body$${INLINE_BODY}$body$;
     CREATE FUNCTION bench_alt.inline_app_branch() RETURNS integer
       LANGUAGE sql STABLE PARALLEL SAFE AS $body$
         SELECT CASE WHEN SESSION_USER OPERATOR(pg_catalog.=) ${appLiteral}::pg_catalog.name
                     THEN ${INLINE_EXPRESSION}
                     ELSE tenantry.current_tenant() END $body$;
     RESET ROLE;
     GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bench_alt TO ${pg.escapeIdentifier(app)};`,
  );
}

async function usePolicy(
  tenantry: Tenantry,
  variant: Variant,
  others: readonly OtherPolicy[] = [],
): Promise<void> {
  const statements = [
    `ALTER POLICY tenantry_isolation ON public.event USING (${variant.policy}) WITH CHECK (${variant.policy})`,
  ];
  for (const other of others) {
    const clause = (expr: string | null, keyword: string) =>
      expr === null ? '' : ` ${keyword} (${variant.othersOff ? 'true' : expr})`;
    statements.push(
      `ALTER POLICY ${pg.escapeIdentifier(other.name)} ON public.event${clause(other.using, 'USING')}${clause(other.check, 'WITH CHECK')}`,
    );
  }
  await tenantry.operator.query(statements.join(';\n'));
}

/** Prints the generic plan of the point lookup under each variant. */
async function explainVariants(
  tenantry: Tenantry,
  variants: readonly Variant[],
  others: readonly OtherPolicy[],
  client: pg.Client,
  tenant: number,
): Promise<void> {
  const point = shapes.find((shape) => shape.name === 'point')!;
  for (const variant of variants) {
    await usePolicy(tenantry, variant, others);
    const query = queryOf(point, 'rls', 'prepared', tenant, 42);
    await client.query(`BEGIN; SELECT set_config('tenantry.tenant', '${tenant}', true)`);
    try {
      await client.query(`PREPARE explain_me(int) AS ${query.text}`);
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        'EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE explain_me(42)',
      );
      console.log(`--- point, ${variant.name}: USING (${variant.policy}), generic plan:`);
      for (const row of rows) console.log(`    ${row['QUERY PLAN']}`);
    } finally {
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE explain_me').catch(() => undefined);
    }
  }
}

/**
 * PL/pgSQL loops that time the point lookup inside the server (no client, no network): static
 * SQL runs a cached plan like a prepared statement; EXECUTE plans every time like the simple
 * protocol. SECURITY INVOKER, so the policy applies to the caller. Each returns µs per lookup.
 */
async function createTimers(tenantry: Tenantry, readerRole: string): Promise<void> {
  const id = '1 + i % ' + String(ROWS_PER_TENANT);
  await tenantry.operator.query(
    `CREATE FUNCTION bench_alt.time_rls(n int, dynamic bool) RETURNS float8 LANGUAGE plpgsql AS $fn$
     DECLARE t0 timestamptz; p text;
     BEGIN
       t0 := pg_catalog.clock_timestamp();
       FOR i IN 1..n LOOP
         IF dynamic THEN
           EXECUTE 'SELECT payload FROM public.event WHERE id = ' || (${id}) INTO p;
         ELSE
           SELECT e.payload INTO p FROM public.event e WHERE e.id = ${id};
         END IF;
         IF p IS NULL THEN RAISE EXCEPTION 'no row for id %', ${id}; END IF;
       END LOOP;
       RETURN extract(epoch FROM pg_catalog.clock_timestamp() - t0) * 1e6 / n;
     END $fn$;
     CREATE FUNCTION bench_alt.time_plain(tenant int, n int, dynamic bool) RETURNS float8 LANGUAGE plpgsql AS $fn$
     DECLARE t0 timestamptz; p text;
     BEGIN
       t0 := pg_catalog.clock_timestamp();
       FOR i IN 1..n LOOP
         IF dynamic THEN
           EXECUTE 'SELECT payload FROM public.event_plain WHERE tenant_id = ' || tenant || ' AND id = ' || (${id}) INTO p;
         ELSE
           SELECT e.payload INTO p FROM public.event_plain e WHERE e.tenant_id = tenant AND e.id = ${id};
         END IF;
         IF p IS NULL THEN RAISE EXCEPTION 'no row for id %', ${id}; END IF;
       END LOOP;
       RETURN extract(epoch FROM pg_catalog.clock_timestamp() - t0) * 1e6 / n;
     END $fn$;
     GRANT EXECUTE ON FUNCTION bench_alt.time_rls(int, bool) TO ${pg.escapeIdentifier(tenantry.roles.app)};
     GRANT USAGE ON SCHEMA bench_alt TO ${pg.escapeIdentifier(readerRole)};
     GRANT EXECUTE ON FUNCTION bench_alt.time_plain(int, int, bool) TO ${pg.escapeIdentifier(readerRole)};`,
  );
}

/** Server-side µs per point lookup: cached plan and planned each time. */
async function timeInServer(
  client: pg.Client,
  who: 'baseline' | 'rls',
  tenant: number,
  n: number,
): Promise<{ cached: number; planned: number }> {
  await client.query(`BEGIN; SELECT set_config('tenantry.tenant', '${tenant}', true)`);
  try {
    const run = async (dynamic: boolean) => {
      const { rows } = await client.query<{ us: number }>(
        who === 'baseline'
          ? { text: 'SELECT bench_alt.time_plain($1, $2, $3) AS us', values: [tenant, n, dynamic] }
          : { text: 'SELECT bench_alt.time_rls($1, $2) AS us', values: [n, dynamic] },
      );
      return rows[0]!.us;
    };
    await run(false); // warms caches and settles the plan choice
    return { cached: await run(false), planned: await run(true) };
  } finally {
    await client.query('COMMIT');
  }
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv, ['--explain']);
  const timing = args.quick
    ? { rounds: 2, roundMs: 150, warmupMs: 50 }
    : { rounds: 5, roundMs: 600, warmupMs: 300 };
  const measuredShapes = args.quick ? shapes.filter((s) => s.name === 'point') : shapes;

  const started = Date.now();
  const loadStart = loadAverage();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  const clients: pg.Client[] = [];
  let summary: Parameters<typeof printResult>[0];
  try {
    console.log(
      `${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where} (scratch database); load average ${loadStart}`,
    );
    const instance = await createTenantry({ databaseUrl: db.url });
    tenantry = instance;
    const readerRole = `bench_reader_${randomBytes(4).toString('hex')}`;
    const readerPassword = randomBytes(16).toString('hex');
    db.dropRolesOnClose(readerRole, ...roleNames(instance.roles));
    const tenants = await loadEventTables(instance, readerRole, readerPassword);
    await createAlternatives(instance);
    await createTimers(instance, readerRole);
    console.log(`loaded and set up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const line of await describePolicies(instance)) console.log(`  policy on public.event: ${line}`);
    console.log(
      '  (the variants replace tenantry_isolation; other policies stay, except in the *_alone variants, ' +
        'where they are USING (true))',
    );

    const appUrl = urlAs(db.url, instance.roles.app, await appPassword(instance));
    const baselineClients: pg.Client[] = [];
    const rlsClients: pg.Client[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      baselineClients.push(await connect(urlAs(db.url, readerRole, readerPassword), 'bench-baseline'));
      rlsClients.push(await connect(appUrl, 'bench-rls'));
    }
    clients.push(...baselineClients, ...rlsClients);
    const others = await otherPolicies(instance);
    // TENANTRY_BENCH_VARIANTS=a,b limits the run to those variants (`installed` is always measured).
    const only = process.env.TENANTRY_BENCH_VARIANTS?.split(',').map((name) => name.trim());
    const variants = variantsFor(
      pg.escapeLiteral(instance.roles.app),
      await installedPolicy(instance),
    ).filter((v) => only === undefined || v.name === 'installed' || only.includes(v.name));
    if (others.length > 0) {
      // What the isolation policy costs alone, and the floor, with tenantry's other policies off.
      const installed = variants[0]!;
      const raw = variants.find((v) => v.name === 'raw_setting');
      variants.push({ ...installed, name: 'installed_alone', othersOff: true });
      if (raw) variants.push({ ...raw, name: 'raw_setting_alone', othersOff: true });
    }
    if (args.flags.has('--explain')) {
      await explainVariants(instance, variants, others, rlsClients[0]!, tenants[tenants.length >> 1]!);
    }

    const extra: Record<string, number | string> = {};
    const serverN = args.quick ? 1_000 : 10_000;
    const serverReps = args.quick ? 1 : 3;
    const server = new Map<string, { cached: number[]; planned: number[] }>(
      ['baseline', ...variants.map((v) => v.name)].map((name) => [name, { cached: [], planned: [] }]),
    );
    const tenant = tenants[tenants.length >> 1]!;
    for (let rep = 0; rep < serverReps; rep++) {
      for (const name of server.keys()) {
        const variant = variants.find((v) => v.name === name);
        if (variant) await usePolicy(instance, variant, others);
        const time = await timeInServer(
          variant ? rlsClients[0]! : baselineClients[0]!,
          variant ? 'rls' : 'baseline',
          tenant,
          serverN,
        );
        server.get(name)!.cached.push(time.cached);
        server.get(name)!.planned.push(time.planned);
      }
    }
    console.log(
      `server-side time per point lookup (PL/pgSQL loop of ${serverN}, no client or network; median of ${serverReps}): ` +
        'cached plan (like a prepared statement) | planned each time (EXECUTE, like the simple protocol)',
    );
    const serverBase = {
      cached: median(server.get('baseline')!.cached),
      planned: median(server.get('baseline')!.planned),
    };
    for (const [name, times] of server) {
      const cached = median(times.cached);
      const planned = median(times.planned);
      const delta = (value: number, base: number) =>
        name === 'baseline' ? '' : ` (+${(value - base).toFixed(1)})`;
      console.log(
        `  ${name.padEnd(18)} ${cached.toFixed(1).padStart(6)} µs${delta(cached, serverBase.cached).padEnd(9)} | ` +
          `${planned.toFixed(1).padStart(6)} µs${delta(planned, serverBase.planned)}`,
      );
      extra[`${name}_server_us_cached`] = round(cached, 1);
      extra[`${name}_server_us_planned`] = round(planned, 1);
    }

    let active: Variant | undefined;
    const sides: RlsSide[] = [
      { name: 'baseline', who: 'baseline', clients: baselineClients },
      ...variants.map((variant): RlsSide => ({
        name: variant.name,
        who: 'rls',
        clients: rlsClients,
        before: async () => {
          if (active === variant) return;
          await usePolicy(instance, variant, others);
          active = variant;
        },
      })),
    ];
    console.log(
      `${CONNECTIONS} connections per side; transactions of ${QUERIES_PER_TX} queries for one random tenant; ` +
        `${timing.rounds} rounds × ${timing.roundMs / 1000} s per side and case, order rotated; ` +
        `the policy is switched (untimed) before each variant's round`,
    );

    const minima = new Map<string, Record<Protocol, number>>(
      variants.map((v) => [v.name, { prepared: Infinity, simple: Infinity }]),
    );
    for (const protocol of protocols) {
      for (const shape of measuredShapes) {
        const results = await measureCase(sides, shape, protocol, tenants, timing);
        const baseline = results.get('baseline')!.median;
        const parts = [`${shape.name.padEnd(5)} ${protocol.padEnd(8)} baseline ${fmtRate(baseline)} q/s`];
        for (const variant of variants) {
          const ratio = results.get(variant.name)!.median / baseline;
          const min = minima.get(variant.name)!;
          min[protocol] = Math.min(min[protocol], ratio);
          extra[`${variant.name}_${shape.name}_${protocol}`] = round(ratio);
          parts.push(`${variant.name} ${ratio.toFixed(3)}`);
        }
        console.log(parts.join(' | '));
      }
    }
    let best: string | undefined;
    console.log('minimum ratio per variant (goals: prepared ≥ 0.97, simple ≥ 0.93):');
    for (const variant of variants) {
      const min = minima.get(variant.name)!;
      const ok = min.prepared >= GOALS.prepared && min.simple >= GOALS.simple;
      if (ok && best === undefined) best = variant.name;
      extra[`${variant.name}_min_prepared`] = round(min.prepared);
      extra[`${variant.name}_min_simple`] = round(min.simple);
      console.log(
        `  ${variant.name.padEnd(18)} prepared ${min.prepared.toFixed(3)}  simple ${min.simple.toFixed(3)}  ` +
          `${ok ? 'meets the goals' : 'misses'}   USING (${variant.policy})`,
      );
    }
    const loadEnd = loadAverage();
    console.log(
      `total time ${((Date.now() - started) / 1000).toFixed(1)} s; load average ${loadStart} at start, ${loadEnd} at end`,
    );
    const installed = minima.get('installed')!;
    summary = {
      bench: BENCH,
      unit: 'ratio',
      baseline: 1,
      ours: round(installed.prepared),
      ratio: round(installed.prepared),
      goal: GOALS.prepared,
      pass: installed.prepared >= GOALS.prepared && installed.simple >= GOALS.simple,
      min_prepared: round(installed.prepared),
      min_simple: round(installed.simple),
      first_variant_meeting_goals: best ?? null,
      ...extra,
      shapes: measuredShapes.map((s) => s.name).join(','),
      connections: CONNECTIONS,
      rounds: timing.rounds,
      round_seconds: timing.roundMs / 1000,
      load_start: loadStart,
      load_end: loadEnd,
      quick: args.quick,
    };
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
    await tenantry?.close();
    await db.close();
  }
  printResult(summary);
}
