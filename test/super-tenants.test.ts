import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type ScanFailure,
  type ScanRow,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;

async function collect(it: AsyncIterable<ScanRow>): Promise<ScanRow[]> {
  const rows: ScanRow[] = [];
  for await (const row of it) rows.push(row);
  return rows;
}

beforeAll(async () => {
  const url = await createTestDatabase('super');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, cust_num));
    CREATE TABLE item (tenant_id int NOT NULL, item_num int NOT NULL, item_desc text NOT NULL, PRIMARY KEY (tenant_id, item_num));`);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.multiTenant('public.item');
  const customers: Record<string, string[]> = {
    HomeDepot: ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'],
    Lowes: ['Fred Smith', 'Joan Adlon', 'George Holmes'],
    LowesNY: ['Nora Young'],
    LowesBos: ['Bill Otis'],
    Menards: ['Zed Zimmer'],
  };
  for (const name of Object.keys(customers)) {
    await tenantry.tenants.create({ name, isolation: name === 'LowesBos' ? 'schema' : 'shared' });
  }
  await tenantry.tenants.create({ name: 'ops', kind: 'super', loginRole: true });
  for (const [name, list] of Object.entries(customers)) {
    await tenantry.withTenant(name, async (db) => {
      for (const [i, customer] of list.entries()) {
        await db.query('INSERT INTO customer (cust_num, name) VALUES ($1, $2)', [i + 1, customer]);
      }
    });
  }
  await tenantry.tenants.create({ name: 'LowesATL' });
  await tenantry.groups.create('LowesItm', { table: 'public.item', tenants: ['LowesNY', 'LowesATL'] });
  await tenantry.withTenant('LowesNY', (db) =>
    db.query("INSERT INTO item (item_num, item_desc) VALUES (1, 'Shovel'), (4, 'Hammer')"),
  );
});
afterAll(async () => {
  await tenantry?.close();
});

describe('super tenants (seed 004)', () => {
  it('have no data of their own', async () => {
    const error = await tenantry
      .withTenant('ops', (db) => db.query('SELECT * FROM customer'))
      .catch((e: unknown) => e);
    expect(isTenantryError(error, 'NOT_ALLOCATED')).toBe(true);
  });

  it('act as another tenant with effective() and SET-EFFECTIVE-TENANT; regular tenants cannot', async () => {
    const names = await tenantry.withTenant('ops', () =>
      tenantry.effective('HomeDepot', async (db) =>
        (await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows.map((r) => r.name),
      ),
    );
    expect(names).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    for (const identity of ['app', 'tenant'] as const) {
      const rows = await tenantry.withTenant(
        'ops',
        (db) =>
          db.query<{ name: string; who: string }>(
            "SELECT tenantry.set_effective_tenant('Lowes'); SELECT name, tenantry.effective_tenant_name() AS who FROM customer ORDER BY 1",
          ),
        { identity },
      );
      expect(
        rows.rows.map((r) => r.name),
        identity,
      ).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
      expect(rows.rows[0]?.who).toBe('Lowes');
    }
    const forbidden = await tenantry
      .withTenant('HomeDepot', () => tenantry.effective('Lowes', async () => 1))
      .catch((e: unknown) => e);
    expect(isTenantryError(forbidden, 'FORBIDDEN')).toBe(true);
    const sql = await tenantry
      .withTenant('HomeDepot', (db) => db.query("SELECT tenantry.set_effective_tenant('Lowes')"))
      .catch((e: unknown) => e);
    expect(isTenantryError(sql, 'FORBIDDEN')).toBe(true);
    expect((sql as { sqlstate?: string }).sqlstate).toBe('42501');
  });

  it("TENANT-WHERE id > 0 and name < 'M' returns HomeDepot and the Lowes tenants, in tenant order", async () => {
    const rows = await tenantry.withTenant('ops', () =>
      collect(
        tenantry.crossTenant({
          where: "id > 0 and name < 'M'",
          sql: 'SELECT name FROM customer ORDER BY name',
        }),
      ),
    );
    const order = rows.map((r) => r._tenant_name);
    expect([...new Set(order)]).toEqual(['HomeDepot', 'Lowes', 'LowesNY', 'LowesBos']);
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => typeof r._tenant_id === 'number')).toBe(true);
    expect(order).not.toContain('Menards');
  });

  it('orderBy merges the tenants’ rows in that order (BY Customer.Name)', async () => {
    const rows = await collect(
      tenantry.crossTenant({
        where: 'id > 0',
        sql: 'SELECT name FROM customer',
        orderBy: 'name',
        asOperator: true,
      }),
    );
    const names = rows.map((r) => r.name as string);
    expect(names).toEqual([...names].sort());
    expect(names).toHaveLength(9);
    expect(rows.find((r) => r.name === 'Bill Otis')?._tenant_name).toBe('LowesBos');
  });

  it('returns a group’s rows once with skipGroupDuplicates, twice without', async () => {
    const scan = (skip: boolean) =>
      collect(
        tenantry.crossTenant({
          sql: 'SELECT item_num FROM item',
          skipGroupDuplicates: skip,
          asOperator: true,
        }),
      );
    expect((await scan(false)).map((r) => r.item_num).sort()).toEqual([1, 1, 4, 4]);
    expect((await scan(true)).map((r) => r.item_num).sort()).toEqual([1, 4]);
  });

  it('skipGroupDuplicates reads a group through a member the scan covers, whichever that is', async () => {
    const scan = (where: string, batch: boolean) =>
      collect(
        tenantry.crossTenant({
          sql: 'SELECT item_num FROM item',
          where,
          skipGroupDuplicates: true,
          batch,
          asOperator: true,
        }),
      );
    for (const batch of [true, false]) {
      // LowesNY, the group's first member, is not scanned: LowesATL reads the group.
      const atl = await scan("name IN ('LowesATL', 'HomeDepot')", batch);
      expect(atl.map((r) => [r._tenant_name, r.item_num]).sort()).toEqual([
        ['LowesATL', 1],
        ['LowesATL', 4],
      ]);
      expect((await scan("name IN ('LowesNY', 'LowesATL')", batch)).map((r) => r.item_num).sort()).toEqual([
        1, 4,
      ]);
    }
  });

  it('fails, or reports partial results, when a tenant errors; only super tenants and the operator may scan', async () => {
    const home = await tenantry.resolveTenant('HomeDepot');
    const sql = `SELECT 1 / (tenantry.tenant_id() - ${home.id}) AS x`;
    const fail = await collect(tenantry.crossTenant({ sql, asOperator: true })).catch((e: unknown) => e);
    expect((fail as { code?: string }).code).toBe('22012');
    const failures: ScanFailure[] = [];
    const partial = await collect(
      tenantry.crossTenant({ sql, asOperator: true, onError: 'partial' }, failures),
    );
    expect(failures.map((f) => f.tenant)).toEqual(['HomeDepot']);
    expect(partial.length).toBeGreaterThan(3);
    expect(() => tenantry.crossTenant({ sql: 'SELECT 1' })).toThrow(/super tenant/);
    const badWhere = await collect(
      tenantry.crossTenant({ sql: 'SELECT 1', where: 'nope = 1', asOperator: true }),
    ).catch((e: unknown) => e);
    expect(isTenantryError(badWhere, 'INVALID_ARGUMENT')).toBe(true);
    const sneaky = await collect(
      tenantry.crossTenant({
        sql: 'SELECT 1',
        where: 'EXISTS (SELECT 1 FROM tenantry.credential)',
        asOperator: true,
      }),
    ).catch((e: unknown) => e);
    expect((sneaky as Error).message).toMatch(/permission denied/);
  });
});
