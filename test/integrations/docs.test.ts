import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewayFixture, type GatewayFixture } from '../helpers/gateway.js';
import type { Tenantry } from '../../src/index.js';
import { demoDatabase, runDocExample } from './demo.js';
import { ownersOf } from './expect.js';

/** Runs an example of docs/integrations.md against a fresh demo database. */
async function runOnDemo(
  name: string,
  check: (tenantry: Tenantry) => Promise<void> = async () => undefined,
): Promise<unknown[][]> {
  const demo = await demoDatabase(`doc_${name}`);
  try {
    const logs = await runDocExample(name, { TENANTRY_DATABASE_URL: demo.url });
    await check(demo.tenantry);
    return logs;
  } finally {
    await demo.tenantry.close();
  }
}

describe('docs/integrations.md: every example runs as written and prints what it says', () => {
  it('node-postgres: pg-style functions run unchanged on tenantryPgPool', async () => {
    const logs = await runOnDemo('node-postgres', async (tenantry) =>
      expect(await ownersOf(tenantry, 'Dana Reyes')).toEqual(['HomeDepot']),
    );
    expect(logs).toEqual([
      [['Albert Hall', 'Candace Jones', 'Carrie Abrahm', 'Dana Reyes']],
      [['Fred Smith', 'George Holmes', 'Joan Adlon']],
      ['TENANTRY_ERR_NO_TENANT'],
    ]);
  });

  it('queryable: code typed { query } takes the tenant handle', async () => {
    const logs = await runOnDemo('queryable');
    expect(logs).toEqual([[2, 0]]);
  });

  it('kysely: one Kysely instance for every tenant, transactions and stream()', async () => {
    const logs = await runOnDemo('kysely', async (tenantry) =>
      expect(await ownersOf(tenantry, 'Dana Reyes')).toEqual(['Lowes']),
    );
    expect(logs).toEqual([
      [[['Carrie Abrahm'], ['Dana Reyes', 'Fred Smith', 'Joan Adlon']]],
      ['Albert Hall', 'Atlanta'],
      ['Candace Jones', 'Marietta'],
      ['Carrie Abrahm', 'Raleigh'],
    ]);
  });

  it('drizzle: the node-postgres driver over tenantryPgPool', async () => {
    const logs = await runOnDemo('drizzle', async (tenantry) =>
      expect(await ownersOf(tenantry, 'Dana Reyes')).toEqual(['HomeDepot']),
    );
    expect(logs).toEqual([
      [['Albert Hall', 'Candace Jones', 'Carrie Abrahm', 'Dana Reyes']],
      [['Fred Smith', 'George Holmes', 'Joan Adlon']],
    ]);
  });

  describe('gateway: an unchanged app (pg, postgres.js, Kysely, Drizzle) behind the gateway', () => {
    let fixture: GatewayFixture;
    beforeAll(async () => {
      fixture = await gatewayFixture('doc_gateway');
    });
    afterAll(async () => fixture.close());

    it.each([
      ['alice@HomeDepot', 'Albert Hall, Candace Jones, Carrie Abrahm'],
      ['fred@Lowes', 'Fred Smith, George Holmes, Joan Adlon'],
    ])('as %s it sees only that tenant', async (user, names) => {
      const logs = await runDocExample('gateway', { DATABASE_URL: fixture.connectionString(user) });
      expect(logs).toEqual([[names], [names], [names], [names]]);
    });
  });
});
