import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTenant, isTenantryError, type Tenantry } from '../src/index.js';
import { withClient } from './helpers/db.js';
import { storeFixture } from './helpers/fixtures.js';

let tenantry: Tenantry;
let url: string;

beforeAll(async () => {
  ({ tenantry, url } = await storeFixture('isolation'));
});
afterAll(async () => {
  await tenantry?.close();
});

const names = (rows: { name: string }[]) => rows.map((r) => r.name);

/** A plain connection as the application role, with no tenantry code in between. */
async function asAppRole<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const password = await withClient(url, async (c) => {
    const { rows } = await c.query<{ value: string }>(
      "SELECT value FROM tenantry.secret WHERE name = 'app_password'",
    );
    return rows[0]!.value;
  });
  const parsed = new URL(url);
  parsed.username = tenantry.roles.app;
  parsed.password = password;
  return withClient(parsed.toString(), fn);
}

describe('a tenant sees and changes only its own rows', () => {
  it('selects only its own customers, with the same code for both tenants', async () => {
    const read = (tenant: string) =>
      tenantry.withTenant(tenant, async (db) =>
        names((await db.query<{ name: string }>('SELECT name FROM customer ORDER BY name')).rows),
      );
    expect(await read('HomeDepot')).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    expect(await read('Lowes')).toEqual(['Fred Smith', 'George Holmes', 'Joan Adlon']);
  });

  it('cannot update or delete another tenant’s rows', async () => {
    await tenantry.withTenant('Lowes', async (db) => {
      const update = await db.query("UPDATE customer SET name = 'hacked' WHERE name = 'Albert Hall'");
      expect(update.rowCount).toBe(0);
      const del = await db.query("DELETE FROM customer WHERE name LIKE 'C%'");
      expect(del.rowCount).toBe(0);
    });
    await tenantry.withTenant('HomeDepot', async (db) => {
      const { rows } = await db.query<{ name: string }>('SELECT name FROM customer ORDER BY name');
      expect(names(rows)).toEqual(['Albert Hall', 'Candace Jones', 'Carrie Abrahm']);
    });
  });

  it('cannot insert rows as another tenant: an explicit other tenant_id fails WITH CHECK', async () => {
    const homeDepot = await tenantry.resolveTenant('HomeDepot');
    const error = await tenantry
      .withTenant('Lowes', (db) =>
        db.query("INSERT INTO customer (tenant_id, cust_num, name) VALUES ($1, 99, 'Mallory')", [
          homeDepot.id,
        ]),
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(pg.DatabaseError);
    expect((error as pg.DatabaseError).code).toBe('42501');
    expect((error as pg.DatabaseError).message).toMatch(/row-level security/);
  });

  it('cannot move its own row to another tenant with UPDATE', async () => {
    const homeDepot = await tenantry.resolveTenant('HomeDepot');
    const error = await tenantry
      .withTenant('Lowes', (db) =>
        db.query('UPDATE customer SET tenant_id = $1 WHERE cust_num = 1', [homeDepot.id]),
      )
      .catch((e: unknown) => e);
    expect((error as pg.DatabaseError).code).toBe('42501');
  });

  it('fills the tenant column on insert and answers tenant_id()/tenant_name()', async () => {
    await tenantry.withTenant('Lowes', async (db) => {
      await db.query("INSERT INTO customer (cust_num, name) VALUES (50, 'Nina Park')");
      const { rows } = await db.query<{ id: number; name: string; owner: number }>(
        'SELECT tenantry.tenant_id() AS id, tenantry.tenant_name() AS name, (SELECT tenant_id FROM customer WHERE cust_num = 50) AS owner',
      );
      expect(rows[0]).toEqual({ id: db.tenant.id, name: 'Lowes', owner: db.tenant.id });
      await db.query('DELETE FROM customer WHERE cust_num = 50');
    });
  });

  it('reads shared tables from every tenant but cannot write them without a grant', async () => {
    for (const tenant of ['HomeDepot', 'Lowes']) {
      await tenantry.withTenant(tenant, async (db) => {
        const { rows } = await db.query('SELECT code FROM state ORDER BY code');
        expect(rows.map((r) => r.code as string)).toEqual(['GA', 'NC']);
        const error = await db.query("INSERT INTO state VALUES ('TX', 'Texas')").catch((e: unknown) => e);
        expect((error as pg.DatabaseError).code).toBe('42501');
      });
    }
  });

  it('transactions commit and roll back as one tenant, and nested calls use savepoints', async () => {
    await tenantry.withTenant('HomeDepot', async (db) => {
      await db
        .transaction(async (tx) => {
          await tx.query("INSERT INTO customer (cust_num, name) VALUES (60, 'Temp')");
          throw new Error('undo');
        })
        .catch(() => undefined);
      await db.transaction(async (tx) => {
        await tx.query("INSERT INTO customer (cust_num, name) VALUES (61, 'Kept')");
        await tx
          .transaction(async (inner) => {
            await inner.query("INSERT INTO customer (cust_num, name) VALUES (62, 'Inner')");
            throw new Error('undo inner');
          })
          .catch(() => undefined);
        const { rows } = await tx.query('SELECT tenantry.tenant_name() AS t');
        expect(rows[0]?.t).toBe('HomeDepot');
      });
      const { rows } = await db.query<{ cust_num: number }>(
        'SELECT cust_num FROM customer WHERE cust_num >= 60 ORDER BY 1',
      );
      expect(rows.map((r) => r.cust_num)).toEqual([61]);
      await db.query('DELETE FROM customer WHERE cust_num = 61');
    });
  });
});

describe('fail closed', () => {
  it('throws TENANTRY_ERR_NO_TENANT in the library when no tenant is in context', async () => {
    expect(() => getTenant()).toThrow(/No tenant in context/);
    const error = await tenantry.query('SELECT 1').catch((e: unknown) => e);
    expect(isTenantryError(error, 'NO_TENANT')).toBe(true);
  });

  it('gives zero rows in SQL with no setting, an empty one, garbage or an unknown tenant', async () => {
    await asAppRole(async (client) => {
      const count = async (setting: string | null) => {
        await client.query('BEGIN');
        if (setting !== null) await client.query("SELECT set_config('tenantry.tenant', $1, true)", [setting]);
        const { rows } = await client.query<{ n: string; t: number | null }>(
          'SELECT count(*) AS n, tenantry.current_tenant() AS t FROM customer',
        );
        await client.query('COMMIT');
        return rows[0];
      };
      for (const setting of [null, '', '   ', 'HomeDepot', '1 OR true', '99999', '-0', '1e3']) {
        expect(await count(setting), `setting ${JSON.stringify(setting)}`).toEqual({ n: '0', t: null });
      }
      const error = await client
        .query("INSERT INTO customer (cust_num, name) VALUES (70, 'Nobody')")
        .catch((e: unknown) => e);
      expect((error as pg.DatabaseError).code).toMatch(/^(23502|42501)$/);
    });
  });

  it('runs tenant work under a role that is not superuser, not BYPASSRLS, owns nothing and cannot TRUNCATE', async () => {
    await withClient(url, async (client) => {
      const { rows } = await client.query<{ rolsuper: boolean; rolbypassrls: boolean; owned: string }>(
        `SELECT r.rolsuper, r.rolbypassrls,
                (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid) AS owned
         FROM pg_roles r WHERE r.rolname = $1`,
        [tenantry.roles.app],
      );
      expect(rows[0]).toEqual({ rolsuper: false, rolbypassrls: false, owned: '0' });
    });
    await asAppRole(async (client) => {
      const error = await client.query('TRUNCATE customer').catch((e: unknown) => e);
      expect((error as pg.DatabaseError).code).toBe('42501');
      const catalog = await client.query('SELECT * FROM tenantry.tenant').catch((e: unknown) => e);
      expect((catalog as pg.DatabaseError).code).toBe('42501');
    });
  });
});
