/**
 * Setup of the soak benchmark: a demo-like schema (multi-tenant `customer`, `note` and seed 002's
 * `users`, each row naming its tenant), the tenants (mostly shared, some schema, a few database
 * tenants), one sign-on domain and `write` user per tenant with a password, a delegation token
 * per user, and each tenant's rows. Every row carries the name of the tenant that wrote it (the
 * leak oracle: a row read by another tenant names the wrong one).
 */
import { performance } from 'node:perf_hooks';
import { createTenantry, type TenantIsolation, type Tenantry } from '../src/index.js';
import { forEachLimited } from './load.js';

/** One tenant of the soak, as every face needs it. */
export interface SoakTenant {
  readonly name: string;
  readonly isolation: TenantIsolation;
  /** `app@<name>`, a `write` user of the tenant's builtin domain. */
  readonly user: string;
  /** A delegation token for {@link user} (service `soak`, 24 h). */
  readonly token: string;
}

/** How many tenants of each model. */
export interface TenantMix {
  readonly shared: number;
  readonly schema: number;
  readonly database: number;
}

/** Every user's password (builtin domains need one; the gateway logs in with SCRAM). */
export const SOAK_PASSWORD = 'soak-password';
/** Customers per tenant: cust_num 1..CUSTOMERS, all named for their tenant. */
export const CUSTOMERS = 5;
/** Notes each tenant keeps at most (writes trim the older ones, so tables stay the same size). */
export const NOTES_KEPT = 20;
/** Keeps a tenant's notes at {@link NOTES_KEPT}: the tables keep their size however long the run. */
export const TRIM_NOTES = `DELETE FROM note WHERE created_at < (
  SELECT created_at FROM note ORDER BY created_at DESC OFFSET ${NOTES_KEPT - 1} LIMIT 1)`;
/** Seed 002 `users` rows each tenant keeps at most. */
export const USERS_KEPT = 10;
/** Keeps a tenant's seed 002 `users` at {@link USERS_KEPT}. */
export const TRIM_USERS = `DELETE FROM users WHERE id IN (
  SELECT id FROM users ORDER BY created_at DESC, id OFFSET ${USERS_KEPT})`;

const SCHEMA = `
CREATE TABLE public.customer (
  tenant_id   integer NOT NULL,
  cust_num    integer NOT NULL,
  tenant_name text NOT NULL,
  name        text NOT NULL,
  visits      integer NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, cust_num)
);
CREATE TABLE public.note (
  tenant_id   integer NOT NULL,
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  tenant_name text NOT NULL,
  body        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX note_created ON public.note (tenant_id, created_at);
CREATE TABLE public.users (
  tenant_id  integer NOT NULL,
  id         uuid NOT NULL DEFAULT gen_random_uuid(),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);`;

/** The tenants' names: `sh-0001`…, `sc-001`…, `db-01`… */
export function tenantNames(mix: TenantMix): { name: string; isolation: TenantIsolation }[] {
  const list = (prefix: string, count: number, width: number, isolation: TenantIsolation) =>
    Array.from({ length: count }, (_, i) => ({
      name: `${prefix}-${String(i + 1).padStart(width, '0')}`,
      isolation,
    }));
  return [
    ...list('db', mix.database, 2, 'database'),
    ...list('sc', mix.schema, 3, 'schema'),
    ...list('sh', mix.shared, 4, 'shared'),
  ];
}

async function seedTenant(t: Tenantry, name: string): Promise<void> {
  // Schema and database tenants are reached under their own login role, shared ones through the
  // application role; either way the tenant column is filled by PostgreSQL.
  await t.withTenant(name, (db) =>
    db.transaction(async (tx) => {
      for (let c = 1; c <= CUSTOMERS; c++) {
        await tx.query('INSERT INTO customer (cust_num, tenant_name, name) VALUES ($1, $2, $3)', [
          c,
          name,
          `${name} customer ${c}`,
        ]);
      }
      await tx.query('INSERT INTO note (tenant_name, body) VALUES ($1, $2), ($1, $3)', [
        name,
        'first',
        'second',
      ]);
      await tx.query('INSERT INTO users (name) VALUES ($1), ($2)', [`${name}:a`, `${name}:b`]);
    }),
  );
}

/**
 * Creates schema, tenants, users, tokens and rows on `url` with a setup instance (closed
 * afterwards); prints what it did and how long it took. Answers the tenants.
 */
export async function setUpSoak(url: string, masterKey: string, mix: TenantMix): Promise<SoakTenant[]> {
  const started = performance.now();
  const t = await createTenantry({ databaseUrl: url, masterKey, pool: { budget: 20 } });
  try {
    await t.operator.query(SCHEMA);
    for (const table of ['public.customer', 'public.note', 'public.users']) await t.tables.multiTenant(table);
    const names = tenantNames(mix);
    const timings: string[] = [];
    const byModel = async (isolation: TenantIsolation, concurrency: number) => {
      const t0 = performance.now();
      const subset = names.filter((n) => n.isolation === isolation);
      await forEachLimited(subset, concurrency, async ({ name }) => {
        await t.tenants.create({ name, isolation, ...(isolation === 'shared' ? { loginRole: true } : {}) });
      });
      timings.push(`${subset.length} ${isolation} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    };
    // Schema tenants are created one at a time anyway (tenantry serializes them); databases too.
    await byModel('database', 1);
    await byModel('schema', 1);
    await byModel('shared', 8);
    const t1 = performance.now();
    const tenants: SoakTenant[] = [];
    await forEachLimited(names, 8, async ({ name, isolation }) => {
      await seedTenant(t, name);
      await t.domains.add(name, { tenant: name });
      const user = `app@${name}`;
      await t.users.add(user, { password: SOAK_PASSWORD, permission: 'write' });
      const { token } = await t.tokens.issue({ user, service: 'soak', ttlSeconds: 24 * 3600 });
      tenants.push({ name, isolation, user, token });
    });
    console.log(
      `soak: set up ${names.length} tenants (${timings.join(', ')}; rows, domains, users, tokens in ` +
        `${((performance.now() - t1) / 1000).toFixed(1)} s) — total ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return tenants.sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    await t.close();
  }
}
