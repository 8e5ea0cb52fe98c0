/**
 * cold-tenant: latency of a tenant's first query (pool creation, credential decryption, a new
 * backend) against the query right after it, per isolation model.
 *
 * Models: shared tenants through the application role (`identity: 'app'`), shared tenants with
 * their own login role, schema tenants and database tenants (`identity: 'tenant'`). N tenants
 * per model (quick: 20, default: 100) are created by a setup instance, each given one
 * `customer` row, and that instance is closed; a fresh instance (default pool settings) then
 * runs, tenant after tenant — models interleaved so drift hits them alike — the first query
 * `SELECT name FROM customer WHERE cust_num = 1` and at once the same query again.
 *
 * Extras: a third ("warm") query 20 ms after the second; and, outside the timed queries, whether
 * the second query found the first one's backend (backends of the tenant's role afterwards),
 * `credentials.get()` (read + decrypt), and a plain `pg.Client` as the tenant's role: its connect
 * and its first query (a new backend fills its caches).
 *
 * The goal is informational ("report"): pass unless a query failed.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  createTenantry,
  generateMasterKey,
  type CatalogRoles,
  type Identity,
  type Tenant,
  type TenantIsolation,
  type Tenantry,
} from '../src/index.js';
import { median, openDatabase, parseArgs, round, urlAs, urlFor, withClient } from './harness.js';
import { dropTenantryRolesOnClose, errorCode, fmtMs, percentile, printJsonLine } from './load.js';

const BENCH = 'cold-tenant';
const SQL = 'SELECT name FROM customer WHERE cust_num = $1';
/** Pause before the third ("warm") query: a released connection's reset has finished by then. */
const WARM_PAUSE_MS = 20;
/** Tenants per model whose credential read and plain connect are timed. */
const COMPONENT_SAMPLES = 20;

interface Model {
  readonly key: string;
  readonly label: string;
  readonly isolation: TenantIsolation;
  readonly loginRole: boolean;
  readonly identity: Identity;
}

const MODELS: readonly Model[] = [
  {
    key: 'shared_app',
    label: 'shared (app identity)',
    isolation: 'shared',
    loginRole: false,
    identity: 'app',
  },
  {
    key: 'shared_tenant',
    label: 'shared (tenant identity)',
    isolation: 'shared',
    loginRole: true,
    identity: 'tenant',
  },
  {
    key: 'schema',
    label: 'schema (tenant identity)',
    isolation: 'schema',
    loginRole: false,
    identity: 'tenant',
  },
  {
    key: 'database',
    label: 'database (tenant identity)',
    isolation: 'database',
    loginRole: false,
    identity: 'tenant',
  },
];

interface ModelFigures {
  readonly createMs: number[];
  readonly first: number[];
  readonly second: number[];
  /** A third query after a pause of {@link WARM_PAUSE_MS}, once the pool has settled. */
  readonly warm: number[];
  /** Second queries after which the tenant's role had more than one backend: it opened another. */
  secondOpenedBackend: number;
  errors: number;
  readonly errorCodes: Map<string, number>;
  readonly credentialMs: number[];
  readonly connectMs: number[];
  /** The query on that fresh plain connection (the new backend fills its caches). */
  readonly plainQueryMs: number[];
}

function expectedName(tenant: Tenant): string {
  return `first-row-of-${tenant.name}`;
}

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const perModel = args.quick ? 20 : 100;
  const started = performance.now();
  const db = await openDatabase(BENCH);
  const external = Boolean(process.env.TENANTRY_BENCH_DATABASE_URL);
  const masterKey = generateMasterKey();
  let setup: Tenantry | undefined;
  let bench: Tenantry | undefined;
  const databases: string[] = [];
  let roles: CatalogRoles | undefined;
  let result: Parameters<typeof printJsonLine>[0];
  try {
    console.log(
      `${BENCH}: PostgreSQL ${db.serverVersion}, ${db.where}` +
        (args.quick ? ` — QUICK run: ${perModel} tenants per model` : `, ${perModel} tenants per model`),
    );
    setup = await createTenantry({ databaseUrl: db.url, masterKey });
    roles = setup.roles;
    await setup.operator.query(
      `CREATE TABLE public.customer (
         tenant_id int, cust_num int, name text, PRIMARY KEY (tenant_id, cust_num))`,
    );
    await setup.tables.multiTenant('public.customer');

    // --- setup: tenants (creation timed per tenant, for the report) and one row each ---
    const figures = new Map<string, ModelFigures>(
      MODELS.map((m) => [
        m.key,
        {
          createMs: [],
          first: [],
          second: [],
          warm: [],
          secondOpenedBackend: 0,
          errors: 0,
          errorCodes: new Map(),
          credentialMs: [],
          connectMs: [],
          plainQueryMs: [],
        },
      ]),
    );
    const tenants = new Map<string, Tenant[]>(MODELS.map((m) => [m.key, []]));
    for (const model of MODELS) {
      const list = tenants.get(model.key)!;
      const fig = figures.get(model.key)!;
      for (let i = 1; i <= perModel; i++) {
        const t0 = performance.now();
        const tenant = await setup.tenants.create({
          name: `${model.key.replace('_', '-')}-${String(i).padStart(3, '0')}`,
          isolation: model.isolation,
          ...(model.loginRole ? { loginRole: true } : {}),
        });
        fig.createMs.push(performance.now() - t0);
        list.push(tenant);
        if (tenant.databaseName) databases.push(tenant.databaseName);
        await setup.withTenant(
          tenant.id,
          (tdb) => tdb.query('INSERT INTO customer (cust_num, name) VALUES (1, $1)', [expectedName(tenant)]),
          { identity: model.identity },
        );
      }
      console.log(
        `created ${perModel} ${model.label} tenants: tenants.create() median ${fmtMs(median(fig.createMs))} ms, ` +
          `p95 ${fmtMs(percentile(fig.createMs, 95))} ms`,
      );
    }
    await setup.close();
    setup = undefined;

    // --- measurement: a fresh instance, tenant after tenant, models interleaved ---
    bench = await createTenantry({ databaseUrl: db.url, masterKey });
    const budget = bench.poolStats().servers.find((s) => s.server === 'main')?.budget;
    console.log(
      `measuring on a fresh instance (default pool settings: budget ${budget ?? '?'}, ` +
        `maxPools ${bench.config.pool.maxPools}); each tenant: first query, then the same query at once`,
    );
    const monitor = new pg.Client({ connectionString: db.url, application_name: 'bench-monitor' });
    await monitor.connect();
    try {
      const instance = bench;
      const query = async (tenant: Tenant, identity: Identity): Promise<number> => {
        const t0 = performance.now();
        const { rows } = await instance.withTenant(
          tenant.id,
          (tdb) => tdb.query<{ name: string }>(SQL, [1]),
          { identity },
        );
        const ms = performance.now() - t0;
        if (rows.length !== 1 || rows[0]?.name !== expectedName(tenant)) {
          throw Object.assign(
            new Error(`${tenant.name}: expected its one row, got ${JSON.stringify(rows)}`),
            {
              code: 'WRONG_RESULT',
            },
          );
        }
        return ms;
      };
      for (let i = 0; i < perModel; i++) {
        for (let m = 0; m < MODELS.length; m++) {
          const model = MODELS[(i + m) % MODELS.length]!;
          const tenant = tenants.get(model.key)![i]!;
          const fig = figures.get(model.key)!;
          try {
            const first = await query(tenant, model.identity);
            const second = await query(tenant, model.identity);
            if (model.identity === 'tenant' && tenant.role) {
              const { rows } = await monitor.query<{ n: number }>(
                `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1`,
                [tenant.role],
              );
              if ((rows[0]?.n ?? 0) > 1) fig.secondOpenedBackend++;
            }
            await new Promise((resolve) => setTimeout(resolve, WARM_PAUSE_MS));
            const warm = await query(tenant, model.identity);
            fig.first.push(first);
            fig.second.push(second);
            fig.warm.push(warm);
          } catch (error) {
            fig.errors++;
            const code = errorCode(error);
            fig.errorCodes.set(code, (fig.errorCodes.get(code) ?? 0) + 1);
            if (fig.errors === 1) console.log(`  ${model.label}: ${tenant.name} failed: ${String(error)}`);
          }
        }
      }
    } finally {
      await monitor.end().catch(() => undefined);
    }

    // --- components, outside the timed queries: credential read + decrypt, a plain connect ---
    for (const model of MODELS) {
      if (model.identity !== 'tenant') continue;
      const fig = figures.get(model.key)!;
      for (const tenant of tenants.get(model.key)!.slice(0, COMPONENT_SAMPLES)) {
        const t0 = performance.now();
        const password = await bench.credentials.get(`tenant:${tenant.id}`, 'password');
        fig.credentialMs.push(performance.now() - t0);
        let url = urlAs(db.url, tenant.role!, password);
        if (tenant.databaseName) url = urlFor(url, tenant.databaseName);
        const client = new pg.Client({ connectionString: url });
        const t1 = performance.now();
        await client.connect();
        fig.connectMs.push(performance.now() - t1);
        const t2 = performance.now();
        await client.query(SQL, [1]);
        fig.plainQueryMs.push(performance.now() - t2);
        await client.end();
      }
    }

    // --- report ---
    const extras: Record<string, number | string> = {};
    const allFirst: number[] = [];
    const allSecond: number[] = [];
    let errors = 0;
    for (const model of MODELS) {
      const fig = figures.get(model.key)!;
      allFirst.push(...fig.first);
      allSecond.push(...fig.second);
      errors += fig.errors;
      const f50 = median(fig.first);
      const s50 = median(fig.second);
      const ratio = f50 / s50;
      console.log(
        `${model.label.padEnd(27)} first: median ${fmtMs(f50)} ms, p95 ${fmtMs(percentile(fig.first, 95))} ms | ` +
          `second: median ${fmtMs(s50)} ms, p95 ${fmtMs(percentile(fig.second, 95))} ms | ` +
          `first/second ${ratio.toFixed(2)}× (${fig.first.length} tenants, ${fig.errors} errors)`,
      );
      console.log(
        `${''.padEnd(27)} warm (third query, ${WARM_PAUSE_MS} ms later): median ${fmtMs(median(fig.warm))} ms, ` +
          `p95 ${fmtMs(percentile(fig.warm, 95))} ms | first/warm ${(f50 / median(fig.warm)).toFixed(2)}×`,
      );
      if (model.identity === 'tenant') {
        console.log(
          `${''.padEnd(27)} second query opened another backend for ${fig.secondOpenedBackend}/${fig.second.length} tenants; ` +
            `credentials.get() median ${fmtMs(median(fig.credentialMs))} ms; ` +
            `plain pg.Client as the role: connect median ${fmtMs(median(fig.connectMs))} ms, ` +
            `its first query ${fmtMs(median(fig.plainQueryMs))} ms (${fig.connectMs.length} tenants)`,
        );
      }
      if (fig.errors > 0) {
        console.log(
          `${''.padEnd(27)} errors: ${[...fig.errorCodes].map(([c, n]) => `${c} × ${n}`).join(', ')}`,
        );
      }
      extras[`${model.key}_first_p50_ms`] = round(f50);
      extras[`${model.key}_first_p95_ms`] = round(percentile(fig.first, 95));
      extras[`${model.key}_second_p50_ms`] = round(s50);
      extras[`${model.key}_second_p95_ms`] = round(percentile(fig.second, 95));
      extras[`${model.key}_ratio`] = round(ratio);
      extras[`${model.key}_warm_p50_ms`] = round(median(fig.warm));
      extras[`${model.key}_first_over_warm`] = round(f50 / median(fig.warm));
      extras[`${model.key}_errors`] = fig.errors;
      extras[`${model.key}_create_p50_ms`] = round(median(fig.createMs));
      if (model.identity === 'tenant') {
        extras[`${model.key}_second_opened_backend`] = fig.secondOpenedBackend;
        extras[`${model.key}_credential_get_p50_ms`] = round(median(fig.credentialMs));
        extras[`${model.key}_plain_connect_p50_ms`] = round(median(fig.connectMs));
        extras[`${model.key}_plain_first_query_p50_ms`] = round(median(fig.plainQueryMs));
      }
    }
    const baseline = median(allSecond);
    const ours = median(allFirst);
    const ratio = ours / baseline;
    const pass = errors === 0;
    console.log(
      `all models: first query median ${fmtMs(ours)} ms (ours), second query median ${fmtMs(baseline)} ms ` +
        `(baseline), ratio ${ratio.toFixed(2)}×; goal: report (pass unless errors) → ${pass ? 'PASS' : 'FAIL'}`,
    );
    console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
    result = {
      bench: BENCH,
      unit: 'ms',
      baseline: round(baseline),
      ours: round(ours),
      ratio: round(ratio),
      goal: 'report',
      pass,
      errors,
      tenants_per_model: perModel,
      ...extras,
      quick: args.quick,
    };
  } finally {
    await setup?.close();
    await bench?.close();
    await dropTenantryRolesOnClose(db, roles).catch((error: unknown) =>
      console.error(`could not list tenantry's roles: ${String(error)}`),
    );
    if (external && databases.length > 0) {
      // Database tenants' databases live beside the bench database: drop them too.
      await withClient(db.url, async (client) => {
        for (const name of databases) {
          await client
            .query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`)
            .catch((error: unknown) => console.error(`could not drop database ${name}: ${String(error)}`));
        }
      });
    }
    await db.close();
  }
  printJsonLine(result);
}
