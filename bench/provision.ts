/**
 * provision: creating a tenant, per isolation model — cloned from a template kept at the current
 * migration version (ours, `tenants.create`) vs replaying the migrations (baseline).
 *
 * Application schema: one migration of 20 multi-tenant tables, each with a primary key and two
 * indexes (applied with `tenantry migrate`'s API). N tenants per model (quick: 20, default:
 * 200), created one after another, model after model, baseline and ours alternating:
 *
 * - shared: ours = `tenants.create()` (a catalog row: nothing to clone); the baseline column shows
 *   the floor, one bare catalog INSERT.
 * - schema: ours = `tenants.create({ isolation: 'schema' })` (tenantry.clone_schema: LIKE of
 *   every template table, secured, one transaction); baseline = the same catalog rows and role,
 *   then the migration's SQL replayed in the new schema and the copies secured
 *   (tenantry.provision_table), in one transaction.
 * - database: ours = `tenants.create({ isolation: 'database' })` (CREATE DATABASE … TEMPLATE
 *   … STRATEGY WAL_LOG, then adoption); baseline = the path before templates: CREATE DATABASE, the
 *   data plane and every table built from the registry's definitions (createTenantDatabase).
 *
 * Figures are mean ms per tenant (total / N), with p50 and p95. Goal: shared ≤ 10, schema ≤ 80,
 * database ≤ 150 ms per tenant. The JSON line's headline is the schema model.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  createTenantry,
  generateMasterKey,
  type CatalogRoles,
  type Migration,
  type Tenantry,
} from '../src/index.js';
import { readRegistryPlan } from '../src/fleet/database-sync.js';
import { createTenantDatabase } from '../src/isolation/database.js';
import { loadAverage, median, openDatabase, parseArgs, round, withClient } from './harness.js';
import { dropTenantryRolesOnClose, fmtMs, percentile, printJsonLine } from './load.js';

const BENCH = 'provision';
const TABLES = 20;
const GOALS = { shared: 10, schema: 80, database: 150 } as const;
const q = pg.escapeIdentifier;

/** The application's schema: 20 tables, a primary key and two indexes each. */
export function appSchemaSql(tables = TABLES): string {
  return Array.from(
    { length: tables },
    (_, i) => `CREATE TABLE t${i} (tenant_id integer NOT NULL, id bigint NOT NULL, name text NOT NULL,
      qty integer NOT NULL DEFAULT 0, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id));
    CREATE INDEX t${i}_name ON t${i} (tenant_id, name);
    CREATE INDEX t${i}_created ON t${i} (tenant_id, created_at);`,
  ).join('\n');
}

/** The application schema as migration 1: its tables everywhere, registered on the shared side. */
export function appMigration(tables = TABLES): Migration {
  const register = Array.from({ length: tables }, (_, i) => `SELECT tenantry.multi_tenant('public.t${i}');`);
  return {
    version: 1,
    name: 'app schema',
    shared: `${appSchemaSql(tables)}\n${register.join('\n')}`,
    tenant: appSchemaSql(tables),
  };
}

/** Applies {@link appMigration}. */
export async function installAppSchema(tenantry: Tenantry, tables = TABLES): Promise<void> {
  const report = await tenantry.migrations.run({ migrations: [appMigration(tables)] });
  if (report.failures.length > 0) throw new Error(`app schema: ${JSON.stringify(report.failures)}`);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** The baseline schema tenant: its catalog rows and role, the migration replayed, copies secured. */
async function replaySchemaTenant(admin: pg.Client, roles: CatalogRoles, name: string): Promise<void> {
  const uuid = randomUUID();
  const own = `tenantry_t_${uuid.replace(/-/g, '')}`;
  const face = `tenantry_f_${uuid.replace(/-/g, '')}`;
  await admin.query('BEGIN');
  try {
    const { rows } = await admin.query<{ id: number }>(
      `INSERT INTO tenantry.tenant (id, uuid, name, kind, isolation) VALUES (nextval('tenantry.regular_tenant_id'), $1, $2, 'regular', 'schema') RETURNING id`,
      [uuid, name],
    );
    await admin.query(`CREATE ROLE ${q(own)} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '${randomBytes(12).toString('hex')}';
      GRANT ${q(roles.global)} TO ${q(own)}; ALTER ROLE ${q(own)} SET search_path = ${q(face)}, tenantry_v;
      CREATE SCHEMA ${q(own)}; REVOKE ALL ON SCHEMA ${q(own)} FROM PUBLIC; GRANT USAGE ON SCHEMA ${q(own)} TO ${q(roles.app)}, ${q(roles.maint)};
      CREATE SCHEMA ${q(face)}; REVOKE ALL ON SCHEMA ${q(face)} FROM PUBLIC; GRANT USAGE, CREATE ON SCHEMA ${q(face)} TO ${q(roles.app)}, ${q(own)};
      SET LOCAL search_path = ${q(own)}, public;
      ${appSchemaSql()}
      RESET search_path;`);
    await admin.query(
      "INSERT INTO tenantry.tenant_role (role_name, tenant_id, permission) VALUES ($1, $2, 'admin')",
      [own, rows[0]!.id],
    );
    await admin.query(
      `SELECT tenantry.provision_table($1, $2, format('public.t%s', i)::regclass, 'tenant_id', $1) FROM generate_series(0, ${TABLES - 1}) i`,
      [own, face],
    );
    await admin.query('UPDATE tenantry.tenant SET schema_name = $1 WHERE id = $2', [own, rows[0]!.id]);
    await admin.query('COMMIT');
  } catch (error) {
    await admin.query('ROLLBACK');
    throw error;
  }
}

interface Side {
  readonly ms: number[];
}
const stats = (s: Side) => ({
  mean: s.ms.reduce((a, b) => a + b, 0) / Math.max(1, s.ms.length),
  p50: median(s.ms),
  p95: percentile(s.ms, 95),
});

export async function main(argv: readonly string[]): Promise<void> {
  const args = parseArgs(argv);
  const perModel = args.quick ? 20 : 200;
  const started = performance.now();
  const db = await openDatabase(BENCH);
  let tenantry: Tenantry | undefined;
  let admin: pg.Client | undefined;
  let roles: CatalogRoles | undefined;
  const extraDatabases: string[] = [];
  let result: Parameters<typeof printJsonLine>[0] | undefined;
  try {
    tenantry = await createTenantry({ databaseUrl: db.url, masterKey: generateMasterKey() });
    roles = tenantry.roles;
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    console.log(
      `${BENCH}: ${db.where}, PostgreSQL ${db.serverVersion}, ${perModel} tenants per model, ${TABLES} tables`,
    );
    await installAppSchema(tenantry);
    const { rows: secret } = await admin.query<{ value: string }>(
      "SELECT value FROM tenantry.secret WHERE name = 'fdw_password'",
    );
    const fdw = { url: db.url, user: roles.fdw, password: secret[0]!.value };
    const serverUrl = db.url;
    // the template database is built once, on the first database tenant: timed apart
    const templateBuildMs = await timed(() =>
      tenantry!.tenants.create({ name: 'warmup', isolation: 'database' }),
    );
    const side = {
      shared: { ms: [] },
      floor: { ms: [] },
      schema: { ms: [] },
      replaySchema: { ms: [] },
      database: { ms: [] },
      replayDatabase: { ms: [] },
    } satisfies Record<string, Side>;
    const t = tenantry;
    const a = admin;
    const r = roles;
    /** One model's two sides for tenant i: [side, create]. */
    const models: [string, (i: number) => [Side, () => Promise<unknown>][]][] = [
      [
        'shared',
        (i) => [
          [side.shared, () => t.tenants.create({ name: `sh${i}` })],
          [
            side.floor,
            () =>
              a.query(
                `INSERT INTO tenantry.tenant (id, uuid, name, kind) VALUES (nextval('tenantry.regular_tenant_id'), $1, $2, 'regular')`,
                [randomUUID(), `fl${i}`],
              ),
          ],
        ],
      ],
      [
        'schema',
        (i) => [
          [side.schema, () => t.tenants.create({ name: `sc${i}`, isolation: 'schema' })],
          [side.replaySchema, () => replaySchemaTenant(a, r, `rs${i}`)],
        ],
      ],
      [
        'database',
        (i) => [
          [side.database, () => t.tenants.create({ name: `db${i}`, isolation: 'database' })],
          [
            side.replayDatabase,
            async () => {
              const uuid = randomUUID();
              const name = `tenantry_t_${uuid.replace(/-/g, '')}`;
              extraDatabases.push(name);
              db.dropRolesOnClose(name);
              await createTenantDatabase({
                ...(await readRegistryPlan(a, fdw)),
                serverUrl,
                database: name,
                role: name,
                rolePassword: randomBytes(12).toString('hex'),
                appRole: r.app,
                tenant: { id: 1_000_000 + i, uuid, name: `rd${i}` },
              });
            },
          ],
        ],
      ],
    ];
    // model after model (a database clone's WAL would slow the next schema clone); within one,
    // baseline and ours alternate, the order swapped each round so drift hits both alike
    for (const [model, pairsOf] of models) {
      for (let i = 0; i < perModel; i++) {
        const pairs = pairsOf(i);
        for (let k = 0; k < pairs.length; k++) {
          const [s, fn] = pairs[(i + k) % pairs.length]!;
          s.ms.push(await timed(fn));
        }
      }
      console.log(`  ${model}: ${perModel} tenants each way…`);
    }
    const fig = Object.fromEntries(Object.entries(side).map(([k, s]) => [k, stats(s)])) as Record<
      keyof typeof side,
      ReturnType<typeof stats>
    >;
    const line = (label: string, s: ReturnType<typeof stats>) =>
      `${label.padEnd(44)} ${fmtMs(s.mean).padStart(8)} ms/tenant (p50 ${fmtMs(s.p50)}, p95 ${fmtMs(s.p95)})`;
    console.log(line('shared   floor (one catalog INSERT)', fig.floor));
    console.log(line('shared   ours (tenants.create)', fig.shared));
    console.log(line('schema   baseline (replay migrations)', fig.replaySchema));
    console.log(line('schema   ours (clone template schema)', fig.schema));
    console.log(line('database baseline (build from definitions)', fig.replayDatabase));
    console.log(line('database ours (CREATE DATABASE … TEMPLATE)', fig.database));
    console.log(
      `template database build (once): ${fmtMs(templateBuildMs)} ms; load average ${loadAverage()}`,
    );
    const ok = {
      shared: fig.shared.mean <= GOALS.shared,
      schema: fig.schema.mean <= GOALS.schema,
      database: fig.database.mean <= GOALS.database,
    };
    const pass = ok.shared && ok.schema && ok.database;
    const ratio = fig.schema.mean / fig.replaySchema.mean;
    console.log(
      `baseline ${fmtMs(fig.replaySchema.mean)} ms, ours ${fmtMs(fig.schema.mean)} ms (schema), ratio ours/baseline ${ratio.toFixed(3)}; ` +
        `goal shared ≤ ${GOALS.shared} ${ok.shared ? 'ok' : 'FAIL'}, schema ≤ ${GOALS.schema} ${ok.schema ? 'ok' : 'FAIL'}, ` +
        `database ≤ ${GOALS.database} ${ok.database ? 'ok' : 'FAIL'} → ${pass ? 'PASS' : 'FAIL'}`,
    );
    console.log(`total time ${((performance.now() - started) / 1000).toFixed(1)} s`);
    result = {
      bench: BENCH,
      unit: 'ms/tenant',
      baseline: round(fig.replaySchema.mean, 2),
      ours: round(fig.schema.mean, 2),
      ratio: round(ratio),
      goal: `shared<=${GOALS.shared}, schema<=${GOALS.schema}, database<=${GOALS.database} ms/tenant`,
      pass,
      shared_ms: round(fig.shared.mean, 2),
      shared_floor_ms: round(fig.floor.mean, 2),
      schema_ms: round(fig.schema.mean, 2),
      schema_replay_ms: round(fig.replaySchema.mean, 2),
      database_ms: round(fig.database.mean, 2),
      database_replay_ms: round(fig.replayDatabase.mean, 2),
      database_ratio: round(fig.database.mean / fig.replayDatabase.mean),
      schema_p95_ms: round(fig.schema.p95, 2),
      database_p95_ms: round(fig.database.p95, 2),
      template_build_ms: round(templateBuildMs, 1),
      tenants_per_model: perModel,
      tables: TABLES,
      load: loadAverage(),
      quick: args.quick,
    };
  } finally {
    await admin?.end().catch(() => undefined);
    const databases = tenantry
      ? (
          await tenantry.operator
            .query<{ d: string }>(
              'SELECT database_name AS d FROM tenantry.tenant WHERE database_name IS NOT NULL',
            )
            .catch(() => ({ rows: [] }))
        ).rows.map((r) => r.d)
      : [];
    const template = tenantry?.roles.app.replace(/_app$/, '_template');
    await tenantry?.close();
    await dropTenantryRolesOnClose(db, roles).catch(() => undefined);
    if (process.env.TENANTRY_BENCH_DATABASE_URL) {
      await withClient(db.url, async (c) => {
        if (template)
          await c.query(`ALTER DATABASE ${q(template)} WITH IS_TEMPLATE false`).catch(() => undefined);
        for (const name of [...databases, ...extraDatabases, ...(template ? [template] : [])])
          await c.query(`DROP DATABASE IF EXISTS ${q(name)} WITH (FORCE)`).catch(() => undefined);
      });
      if (template) db.dropRolesOnClose(template);
    }
    await db.close();
  }
  if (result) printJsonLine(result);
}
