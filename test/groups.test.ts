import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type Identity,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;

beforeAll(async () => {
  const url = await createTestDatabase('groups');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE item (tenant_id int NOT NULL, item_num int NOT NULL, item_desc text NOT NULL, PRIMARY KEY (tenant_id, item_num));
    CREATE TABLE ticket (tenant_id int NOT NULL, num bigint NOT NULL DEFAULT tenantry.next('ticketnum'), PRIMARY KEY (tenant_id, num));`);
  await tenantry.sequences.create('ticketnum');
  await tenantry.tables.multiTenant('public.item');
  await tenantry.tables.multiTenant('public.ticket');
  for (const name of ['HomeDepot', 'Lowes', 'LowesNY', 'LowesBos', 'LowesATL']) {
    await tenantry.tenants.create({ name, loginRole: true });
  }
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' });
  const insert = (tenant: string, items: [number, string][]) =>
    tenantry.withTenant(tenant, async (db) => {
      for (const [num, desc] of items)
        await db.query('INSERT INTO item (item_num, item_desc) VALUES ($1, $2)', [num, desc]);
    });
  await insert('HomeDepot', [
    [2, 'Lawn Mower'],
    [5, 'Screw Driver'],
    [6, 'Table'],
  ]);
  await tenantry.groups.create('LowesItm', { table: 'public.item', tenants: ['LowesNY', 'LowesBos'] });
  await insert('LowesBos', [
    [1, 'Shovel'],
    [3, 'Extension cable'],
    [7, 'Green Paint'],
    [9, 'Lamp'],
  ]);
  await insert('LowesNY', [
    [4, 'Hammer'],
    [8, 'Faucet'],
  ]);
});
afterAll(async () => {
  await tenantry?.close();
});

const items = (tenant: string, identity: Identity = 'app') =>
  tenantry.withTenant(
    tenant,
    async (db) =>
      (
        await db.query<{ item_num: number; segment_group: string | null }>(
          'SELECT item_num, segment_group FROM item ORDER BY 1',
        )
      ).rows,
    { identity },
  );

describe('tenant groups (seed 004: LowesNY and LowesBos share LowesItm for item)', () => {
  it('members read and write the group’s rows, in both identities', async () => {
    for (const identity of ['app', 'tenant'] as const) {
      for (const member of ['LowesNY', 'LowesBos']) {
        const rows = await items(member, identity);
        expect(
          rows.map((r) => r.item_num),
          `${member} ${identity}`,
        ).toEqual([1, 3, 4, 7, 8, 9]);
        expect(new Set(rows.map((r) => r.segment_group))).toEqual(new Set(['LowesItm']));
      }
    }
    await tenantry.withTenant('LowesNY', (db) =>
      db.query("UPDATE item SET item_desc = 'Big Shovel' WHERE item_num = 1"),
    );
    const desc = await tenantry.withTenant(
      'LowesBos',
      async (db) =>
        (await db.query<{ item_desc: string }>('SELECT item_desc FROM item WHERE item_num = 1')).rows[0]
          ?.item_desc,
    );
    expect(desc).toBe('Big Shovel');
  });

  it('non-members cannot read, write or infer the group’s rows', async () => {
    expect((await items('HomeDepot')).map((r) => [r.item_num, r.segment_group])).toEqual([
      [2, null],
      [5, null],
      [6, null],
    ]);
    expect(await items('Lowes', 'tenant')).toEqual([]);
    await tenantry.withTenant('Lowes', async (db) => {
      expect((await db.query("UPDATE item SET item_desc = 'x' WHERE item_num = 1")).rowCount).toBe(0);
      expect((await db.query('DELETE FROM item')).rowCount).toBe(0);
      expect(
        (
          await db.query(
            'SELECT tenantry.group_name(g) AS n FROM generate_series(1, 20) g WHERE tenantry.group_name(g) IS NOT NULL',
          )
        ).rows,
      ).toEqual([]);
      // the same key in another segment is no conflict and reveals nothing
      await db.query("INSERT INTO item (item_num, item_desc) VALUES (1, 'Lowes own shovel')");
    });
    expect((await items('Lowes')).map((r) => r.item_num)).toEqual([1]);
  });

  it('other tables stay per tenant for group members', async () => {
    await tenantry.withTenant('LowesNY', (db) => db.query('INSERT INTO ticket DEFAULT VALUES'));
    const bos = await tenantry.withTenant(
      'LowesBos',
      async (db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM ticket')).rows[0]?.n,
    );
    expect(bos).toBe(0);
  });

  it('adding a tenant with rows is refused unless asked to merge, which moves its rows into the group', async () => {
    await tenantry.withTenant('LowesATL', (db) =>
      db.query("INSERT INTO item (item_num, item_desc) VALUES (10, 'Rake')"),
    );
    const refused = await tenantry.groups.addMember('LowesItm', 'LowesATL').catch((e: unknown) => e);
    expect(isTenantryError(refused, 'GROUP_CONFLICT')).toBe(true);
    expect((refused as Error).message).toMatch(/already has 1 row\(s\) in public.item; pass merge/);
    const merged = await tenantry.groups.addMember('LowesItm', 'LowesATL', { merge: true });
    expect(merged.members).toEqual(['LowesATL', 'LowesBos', 'LowesNY']);
    expect((await items('LowesNY')).map((r) => r.item_num)).toEqual([1, 3, 4, 7, 8, 9, 10]);
  });

  it('refuses groups for schema tenants, over tables with multi-tenant sequences, and as a tenant to act as', async () => {
    const schema = await tenantry.groups
      .create('AcmeItm', { table: 'public.item', tenants: ['Acme'] })
      .catch((e: unknown) => e);
    expect(isTenantryError(schema, 'GROUP_CONFLICT')).toBe(true);
    const sequence = await tenantry.groups
      .create('Tickets', { table: 'public.ticket', tenants: ['Lowes'] })
      .catch((e: unknown) => e);
    expect((sequence as Error).message).toMatch(/multi-tenant sequence ticketnum/);
    const actAs = await tenantry.withTenant('LowesItm', async () => 1).catch((e: unknown) => e);
    expect(isTenantryError(actAs, 'TENANT_KIND')).toBe(true);
    expect((await tenantry.tenants.list()).some((t) => t.name === 'LowesItm')).toBe(false);
    const twice = await tenantry.groups
      .create('Other', { table: 'public.item', tenants: ['LowesNY'] })
      .catch((e: unknown) => e);
    expect((twice as Error).message).toMatch(/already in group LowesItm/);
  });

  it('removing a member leaves the rows with the group; dropping the group needs force and deletes them', async () => {
    await tenantry.groups.removeMember('LowesItm', 'LowesATL');
    expect(await items('LowesATL')).toEqual([]);
    expect(
      isTenantryError(await tenantry.groups.drop('LowesItm').catch((e: unknown) => e), 'FORCE_REQUIRED'),
    ).toBe(true);
    expect(await tenantry.groups.drop('LowesItm', { force: true })).toBe(7);
    expect(await items('LowesNY')).toEqual([]);
    expect((await tenantry.groups.list()).map((g) => g.name)).toEqual([]);
  });
});
