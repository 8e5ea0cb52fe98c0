// Launches one benchmark: `node bench/run.js NAME [--quick]` (via `npm run bench -- NAME`).
// The benchmarks are TypeScript in bench/*.ts; `npm run build` compiles them to dist/bench/.
/* global console, process, URL */
const benches = {
  'scoped-query': 'tenant-scoped point query through withTenant vs a raw pg.Pool (queries/s)',
  'rls-overhead': 'row-level security cost per query shape, prepared and simple protocol (ratio)',
  'rls-alternatives': 'the rls-overhead workload under alternative policy/function forms (ratio)',
  'tenants-scale':
    "10,000 tenants on max_connections=100: seed 002's pool per tenant vs tenantry (requests/s)",
  'tenant-indexes': 'planning and insert cost of one tenant index per tenant on one table',
  'cold-tenant': "a tenant's first query vs its second, per isolation model (ms)",
  'cross-tenant':
    'ordered crossTenant scan of 1,000 shared tenants vs one plain scan of the base table (rows/s)',
  http: "seed 002's GET /v1/internal/users over 1,000 tenants with per-tenant tokens (req/s)",
  gateway: 'pgbench -S through the PostgreSQL gateway vs PgBouncer (transaction mode) and direct (tps)',
  jobs: 'job workers: 10,000 jobs over 1,000 tenants vs in 1 tenant, 4 slots (jobs/s, first-job wait)',
  provision:
    'creating a tenant per isolation model: template clone vs replaying migrations, 20 tables (ms/tenant)',
  migrate: 'one ADD COLUMN + index over 1,000 schema tenants: tenantry migrate vs a sequential loop (s)',
  move: 'a 1,000,000-row shared tenant moved into its own database under 4 writers: write pause vs an offline move (ms)',
  soak: '10 min of mixed traffic, 1,000 tenants, library + gateway + HTTP, leak oracle: last vs first minute (ops/s)',
};

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !Object.hasOwn(benches, name)) {
  if (name !== undefined) console.error(`unknown benchmark ${JSON.stringify(name)}\n`);
  console.error(
    'usage: npm run bench -- NAME [--quick] [--explain (rls-*)] [--profile (gateway)]\n\navailable benchmarks:',
  );
  for (const [bench, what] of Object.entries(benches)) console.error(`  ${bench.padEnd(18)} ${what}`);
  process.exit(2);
}

/** @type {{ main: (argv: readonly string[]) => Promise<void> }} */
let bench;
try {
  bench = await import(new URL(`../dist/bench/${name}.js`, import.meta.url).href);
} catch (error) {
  console.error(`cannot load dist/bench/${name}.js (run \`npm run bench -- ${name}\`, which builds first):`);
  console.error(error);
  process.exit(1);
}
try {
  await bench.main(args);
} catch (error) {
  if (error instanceof Error && error.name === 'UsageError') {
    console.error(`${name}: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
}
