import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError, type Tenantry } from '../src/index.js';
import { withClient } from './helpers/db.js';
import { storeFixture } from './helpers/fixtures.js';

let tenantry: Tenantry;
let url: string;

beforeAll(async () => {
  ({ tenantry, url } = await storeFixture('lifecycle'));
});
afterAll(async () => {
  await tenantry?.close();
});

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

const countCustomers = (t: string) =>
  tenantry.withTenant(t, async (db) =>
    Number((await db.query('SELECT count(*) AS n FROM customer')).rows[0]?.n),
  );

describe('tenant lifecycle', () => {
  it('creates regular and super tenants with OpenEdge-style ids, unique names and uuids', async () => {
    const acme = await tenantry.tenants.create({ name: 'Acme' });
    const ops = await tenantry.tenants.create({ name: 'ops', kind: 'super' });
    expect(acme.id).toBeGreaterThan(0);
    expect(acme.kind).toBe('regular');
    expect(acme.state).toBe('active');
    expect(acme.isolation).toBe('shared');
    expect(acme.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(ops.id).toBeLessThan(0);
    expect(ops.kind).toBe('super');
    const list = await tenantry.tenants.list();
    expect(list.map((t) => t.name)).toEqual(
      expect.arrayContaining(['Default', 'HomeDepot', 'Lowes', 'Acme', 'ops']),
    );
    expect(list.find((t) => t.name === 'Default')?.id).toBe(0);
    expect((await tenantry.tenants.show(acme.uuid)).name).toBe('Acme');
    expect((await tenantry.tenants.show(acme.id)).name).toBe('Acme');
    expect((await tenantry.tenants.show('ACME')).id).toBe(acme.id);
  });

  it('refuses duplicate names case-insensitively and bad input with stable codes', async () => {
    expect(await codeOf(tenantry.tenants.create({ name: 'homedepot' }))).toBe('TENANTRY_ERR_TENANT_EXISTS');
    for (const name of ['', '1abc', 'a b', "x'; drop table tenantry.tenant; --", 'x'.repeat(64)]) {
      expect(await codeOf(tenantry.tenants.create({ name })), name).toBe('TENANTRY_ERR_INVALID_ARGUMENT');
    }
    expect(await codeOf(tenantry.tenants.create({ name: 'Bad', isolation: 'cluster' as never }))).toBe(
      'TENANTRY_ERR_INVALID_ARGUMENT',
    );
    expect(await codeOf(tenantry.tenants.show('NoSuchTenant'))).toBe('TENANTRY_ERR_TENANT_NOT_FOUND');
    expect(await codeOf(tenantry.tenants.disable('NoSuchTenant'))).toBe('TENANTRY_ERR_TENANT_NOT_FOUND');
    expect(await codeOf(tenantry.withTenant('NoSuchTenant', async () => 1))).toBe(
      'TENANTRY_ERR_TENANT_NOT_FOUND',
    );
  });

  it('a disabled tenant is refused on every library entry point, and enabling restores it', async () => {
    await tenantry.withTenant('Lowes', async (db) => {
      await tenantry.tenants.disable('Lowes');
      // a handle obtained before the disable is refused for new statements
      expect(await codeOf(db.query('SELECT 1'))).toBe('TENANTRY_ERR_TENANT_DISABLED');
      expect(await codeOf(tenantry.query('SELECT 1'))).toBe('TENANTRY_ERR_TENANT_DISABLED');
      expect(await codeOf(db.transaction(async () => 1))).toBe('TENANTRY_ERR_TENANT_DISABLED');
    });
    expect(await codeOf(countCustomers('Lowes'))).toBe('TENANTRY_ERR_TENANT_DISABLED');
    const error = await countCustomers('Lowes').catch((e: unknown) => e);
    expect(isTenantryError(error, 'TENANT_DISABLED') && error.status).toBe(403);
    await tenantry.tenants.enable('Lowes');
    expect(await countCustomers('Lowes')).toBe(3);
  });

  it('an in-flight transaction of a tenant being disabled finishes; new ones are refused', async () => {
    const result = await tenantry.withTenant('HomeDepot', (db) =>
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO customer (cust_num, name) VALUES (80, 'In Flight')");
        await tenantry.tenants.disable('HomeDepot');
        await tx.query("UPDATE customer SET name = 'Still Flying' WHERE cust_num = 80");
        return (await tx.query('SELECT count(*) AS n FROM customer')).rows[0]?.n as string;
      }),
    );
    expect(result).toBe('4');
    expect(await codeOf(countCustomers('HomeDepot'))).toBe('TENANTRY_ERR_TENANT_DISABLED');
    await tenantry.tenants.enable('HomeDepot');
    expect(await countCustomers('HomeDepot')).toBe(4);
    await tenantry.withTenant('HomeDepot', (db) => db.query('DELETE FROM customer WHERE cust_num = 80'));
  });

  it('a locked tenant is reachable only by the operator', async () => {
    await tenantry.tenants.lock('Lowes');
    expect(await codeOf(countCustomers('Lowes'))).toBe('TENANTRY_ERR_TENANT_LOCKED');
    const n = await tenantry.withTenant(
      'Lowes',
      async (db) => Number((await db.query('SELECT count(*) AS n FROM customer')).rows[0]?.n),
      { allowLocked: true },
    );
    expect(n).toBe(3);
    await tenantry.tenants.unlock('Lowes');
    expect(await countCustomers('Lowes')).toBe(3);
  });

  it('the default tenant cannot be disabled or dropped', async () => {
    expect(await codeOf(tenantry.tenants.disable('Default'))).toBe('TENANTRY_ERR_TENANT_KIND');
    expect(await codeOf(tenantry.tenants.drop(0, { force: true }))).toBe('TENANTRY_ERR_TENANT_KIND');
  });

  it('drop needs force, removes the tenant’s rows everywhere in one transaction, and leaves others alone', async () => {
    const doomed = await tenantry.tenants.create({ name: 'Doomed' });
    await tenantry.withTenant('Doomed', (db) =>
      db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'Gone Soon'), (2, 'Also Gone')"),
    );
    expect(await codeOf(tenantry.tenants.drop('Doomed'))).toBe('TENANTRY_ERR_FORCE_REQUIRED');
    expect(await tenantry.tenants.drop('Doomed', { force: true })).toEqual({ 'public.customer': 2 });
    expect(await codeOf(tenantry.withTenant('Doomed', async () => 1))).toBe('TENANTRY_ERR_TENANT_NOT_FOUND');
    await withClient(url, async (client) => {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM customer WHERE tenant_id = $1', [
        doomed.id,
      ]);
      expect(rows[0]?.n).toBe(0);
    });
    expect(await countCustomers('HomeDepot')).toBe(3);
    expect(await countCustomers('Lowes')).toBe(3);
  });

  it('creating and disabling tenants takes no table lock: tenant work goes on meanwhile', async () => {
    await withClient(url, async (blocker) => {
      await blocker.query('BEGIN');
      await blocker.query('SELECT * FROM customer WHERE false FOR UPDATE');
      const created = await tenantry.tenants.create({ name: 'Online' });
      await tenantry.tenants.disable('Online');
      await tenantry.tenants.enable('Online');
      expect(created.name).toBe('Online');
      await blocker.query('COMMIT');
    });
  });

  it('database errors keep their SQLSTATE and fields', async () => {
    const error = await tenantry
      .withTenant('HomeDepot', (db) => db.query('SELECT * FROM no_such_table'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect((error as pg.DatabaseError).code).toBe('42P01');
  });
});
