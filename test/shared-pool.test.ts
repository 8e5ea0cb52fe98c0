import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

let url: string;
let tenantry: Tenantry;

beforeAll(async () => {
  url = await createTestDatabase('shared_pool');
  tenantry = await createTenantry({
    databaseUrl: url,
    masterKey: generateMasterKey(),
    pool: { sharedPoolMax: 2 },
  });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  for (const [name, rows] of [
    ['HomeDepot', "(1, 'Albert Hall', 'GA'), (2, 'Candace Jones', 'GA'), (3, 'Carrie Abrahm', 'NC')"],
    ['Lowes', "(1, 'Fred Smith', 'NC'), (2, 'Joan Adlon', 'NC')"],
  ] as const) {
    await tenantry.tenants.create({ name });
    await tenantry.withTenant(name, (db) =>
      db.query(`INSERT INTO customer (cust_num, name, state) VALUES ${rows}`),
    );
  }
});
afterAll(async () => {
  await tenantry?.close();
});

/** Backends of the application role's pool ('tenantry' is its application_name). */
async function appBackends(): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tenantry'",
    );
    return rows[0]!.n;
  });
}

describe('pool.sharedPoolMax', () => {
  it('caps the application role pool; statements beyond it wait, and each still sees only its tenant', async () => {
    let peak = 0;
    let running = true;
    const watcher = (async () => {
      while (running) {
        peak = Math.max(peak, await appBackends());
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) => {
        const name = i % 2 === 0 ? 'HomeDepot' : 'Lowes';
        return tenantry.withTenant(name, async (db) => {
          const { rows } = await db.query<{ names: string[] }>(
            'SELECT array_agg(name ORDER BY name) AS names FROM customer, pg_sleep(0.02)',
          );
          return { name, names: rows[0]!.names };
        });
      }),
    );
    running = false;
    await watcher;
    for (const { name, names } of answers) {
      expect(names).toEqual(
        name === 'HomeDepot'
          ? ['Albert Hall', 'Candace Jones', 'Carrie Abrahm']
          : ['Fred Smith', 'Joan Adlon'],
      );
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2);
  });

  it('is validated with the rest of the configuration', async () => {
    await expect(
      createTenantry({ databaseUrl: url, install: false, pool: { sharedPoolMax: 0 } }),
    ).rejects.toMatchObject({ code: 'TENANTRY_ERR_CONFIG' });
  });
});
