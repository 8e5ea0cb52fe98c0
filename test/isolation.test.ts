import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTenant, isTenantryError, type Identity, type Tenantry } from '../src/index.js';
import { withClient } from './helpers/db.js';
import { storeFixture } from './helpers/fixtures.js';

const names = (rows: { name: string }[]) => rows.map((r) => r.name);
const HOME_DEPOT = ['Albert Hall', 'Candace Jones', 'Carrie Abrahm'];
const LOWES = ['Fred Smith', 'George Holmes', 'Joan Adlon'];

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

const models: { isolation: 'shared' | 'schema' | 'database'; identity: Identity }[] = [
  { isolation: 'shared', identity: 'app' },
  { isolation: 'shared', identity: 'tenant' },
  { isolation: 'schema', identity: 'app' },
  { isolation: 'schema', identity: 'tenant' },
  { isolation: 'database', identity: 'app' },
  { isolation: 'database', identity: 'tenant' },
];

describe.each(models)(
  '$isolation tenants, $identity identity: a tenant sees and changes only its own rows',
  ({ isolation, identity }) => {
    let tenantry: Tenantry;
    let url: string;
    const as = <T>(tenant: string, fn: Parameters<Tenantry['withTenant']>[1]) =>
      tenantry.withTenant(tenant, fn, { identity }) as Promise<T>;

    beforeAll(async () => {
      ({ tenantry, url } = await storeFixture(`iso_${isolation}_${identity}`, {
        isolation,
        loginRole: true,
      }));
    });
    afterAll(async () => {
      await tenantry?.close();
    });

    it('selects only its own customers, with the same code for both tenants', async () => {
      const read = (tenant: string) =>
        as<string[]>(tenant, async (db) =>
          names((await db.query<{ name: string }>('SELECT name FROM customer ORDER BY name')).rows),
        );
      expect(await read('HomeDepot')).toEqual(HOME_DEPOT);
      expect(await read('Lowes')).toEqual(LOWES);
    });

    it('cannot update or delete another tenant’s rows', async () => {
      await as('Lowes', async (db) => {
        expect(
          (await db.query("UPDATE customer SET name = 'hacked' WHERE name = 'Albert Hall'")).rowCount,
        ).toBe(0);
        expect((await db.query("DELETE FROM customer WHERE name LIKE 'C%'")).rowCount).toBe(0);
      });
      const rows = await as<string[]>('HomeDepot', async (db) =>
        names((await db.query<{ name: string }>('SELECT name FROM customer ORDER BY name')).rows),
      );
      expect(rows).toEqual(HOME_DEPOT);
    });

    it('cannot name the tenant column: inserting or moving rows as another tenant is impossible', async () => {
      const homeDepot = await tenantry.resolveTenant('HomeDepot');
      const insert = await as('Lowes', (db) =>
        db.query("INSERT INTO customer (tenant_id, cust_num, name) VALUES ($1, 99, 'Mallory')", [
          homeDepot.id,
        ]),
      ).catch((e: unknown) => e);
      expect((insert as pg.DatabaseError).code).toBe('42703');
      const move = await as('Lowes', (db) =>
        db.query('UPDATE customer SET tenant_id = $1 WHERE cust_num = 1', [homeDepot.id]),
      ).catch((e: unknown) => e);
      expect((move as pg.DatabaseError).code).toBe('42703');
      expect(await codeOf(as('Lowes', (db) => db.query('SELECT tenant_id FROM customer')))).toBe('42703');
      const columns = await as<string[]>('Lowes', async (db) =>
        (await db.query('SELECT * FROM customer LIMIT 1')).fields.map((f) => f.name),
      );
      expect(columns).toEqual(['cust_num', 'name', 'state']);
    });

    it('fills the tenant column on insert and answers tenant_id()/tenant_name()', async () => {
      await as('Lowes', async (db) => {
        await db.query("INSERT INTO customer (cust_num, name) VALUES (50, 'Nina Park')");
        const { rows } = await db.query<{ id: number; name: string; mine: boolean }>(
          "SELECT tenantry.tenant_id() AS id, tenantry.tenant_name() AS name, EXISTS (SELECT 1 FROM customer WHERE name = 'Nina Park') AS mine",
        );
        expect(rows[0]).toEqual({ id: db.tenant.id, name: 'Lowes', mine: true });
      });
      const elsewhere = await as<number>('HomeDepot', async (db) =>
        Number((await db.query("SELECT count(*) AS n FROM customer WHERE name = 'Nina Park'")).rows[0]?.n),
      );
      expect(elsewhere).toBe(0);
      await as('Lowes', (db) => db.query('DELETE FROM customer WHERE cust_num = 50'));
    });

    it('reads shared tables but cannot write them without a grant', async () => {
      for (const tenant of ['HomeDepot', 'Lowes']) {
        await as(tenant, async (db) => {
          const { rows } = await db.query<{ code: string }>('SELECT code FROM state ORDER BY code');
          expect(rows.map((r) => r.code)).toEqual(['GA', 'NC']);
          expect(await codeOf(db.query("INSERT INTO state VALUES ('TX', 'Texas')"))).toBe('42501');
        });
      }
    });

    it('transactions commit and roll back as one tenant, and nested calls use savepoints', async () => {
      await as('HomeDepot', async (db) => {
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
          expect((await tx.query('SELECT tenantry.tenant_name() AS t')).rows[0]?.t).toBe('HomeDepot');
        });
        const { rows } = await db.query<{ cust_num: number }>(
          'SELECT cust_num FROM customer WHERE cust_num >= 60 ORDER BY 1',
        );
        expect(rows.map((r) => r.cust_num)).toEqual([61]);
        await db.query('DELETE FROM customer WHERE cust_num = 61');
      });
    });

    it('cannot reach the other tenant’s rows by qualified names', async () => {
      const lowes = await tenantry.resolveTenant('Lowes');
      const target =
        isolation === 'schema' ? `${pg.escapeIdentifier(lowes.schemaName!)}.customer` : 'public.customer';
      const result = await as<string[] | string>('HomeDepot', async (db) => {
        try {
          const { rows } = await db.query<{ name: string }>(`SELECT name FROM ${target} ORDER BY 1`);
          return names(rows);
        } catch (error) {
          return (error as pg.DatabaseError).code ?? 'error';
        }
      });
      // A tenant's own role cannot even name base tables; the trusted app role can, and row-level
      // security still shows it only its own rows.
      if (identity === 'tenant') expect(result).toBe('42501');
      else if (isolation === 'schema') expect(result).toEqual([]);
      else expect(result).toEqual(HOME_DEPOT);
    });

    it.runIf(identity === 'tenant')('SQL the tenant sends cannot change its tenant', async () => {
      const lowes = await tenantry.resolveTenant('Lowes');
      const rows = await as<string[]>('HomeDepot', async (db) => {
        await db.query(`SELECT set_config('tenantry.tenant', '${lowes.id}', false)`);
        await db.query(`SET tenantry.tenant = '${lowes.id}'`);
        return names((await db.query<{ name: string }>('SELECT name FROM customer ORDER BY 1')).rows);
      });
      expect(rows).toEqual(HOME_DEPOT);
      const escalate = await as('HomeDepot', (db) => db.query(`SET ROLE ${tenantry.roles.app}`)).catch(
        (e: unknown) => e,
      );
      expect((escalate as pg.DatabaseError).code).toBe('42501');
      if (isolation === 'schema') {
        expect(await codeOf(as('HomeDepot', (db) => db.query('SELECT count(*) FROM public.customer')))).toBe(
          '42501',
        );
      }
    });

    it('the catalog knows where each tenant lives', async () => {
      const tenant = await tenantry.tenants.show('HomeDepot');
      expect(tenant.isolation).toBe(isolation);
      expect(tenant.role).toMatch(/^tenantry_t_[0-9a-f]{32}$/);
      if (isolation === 'schema') expect(tenant.schemaName).toBe(tenant.role);
      if (isolation === 'database') expect(tenant.databaseName).toBe(tenant.role);
      await withClient(url, async (client) => {
        const { rows } = await client.query<{
          rolsuper: boolean;
          rolbypassrls: boolean;
          rolcanlogin: boolean;
        }>('SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1', [tenant.role]);
        expect(rows[0]).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: true });
      });
    });
  },
);

describe('fail closed', () => {
  let tenantry: Tenantry;
  let url: string;

  beforeAll(async () => {
    ({ tenantry, url } = await storeFixture('isolation_closed'));
  });
  afterAll(async () => {
    await tenantry?.close();
  });

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

  it('throws TENANTRY_ERR_NO_TENANT in the library when no tenant is in context', async () => {
    expect(() => getTenant()).toThrow(/No tenant in context/);
    const error = await tenantry.query('SELECT 1').catch((e: unknown) => e);
    expect(isTenantryError(error, 'NO_TENANT')).toBe(true);
  });

  it('gives zero rows in SQL with no setting, an empty one or an unknown tenant, and an error for garbage', async () => {
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
      for (const setting of [null, '', '99999', '-0']) {
        expect(await count(setting), `setting ${JSON.stringify(setting)}`).toEqual({ n: '0', t: null });
      }
      // Garbage fails the statement: the app role's policy reads the setting as an integer
      // without validating it first (catalog version 26), so no row is ever returned.
      for (const setting of ['   ', 'HomeDepot', '1 OR true', '1e3']) {
        const error = await count(setting).catch((e: unknown) => e);
        await client.query('ROLLBACK');
        expect((error as pg.DatabaseError).code, `setting ${JSON.stringify(setting)}`).toBe('22P02');
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
      expect(await codeOf(client.query('TRUNCATE customer'))).toBe('42501');
      expect(await codeOf(client.query('SELECT * FROM tenantry.tenant'))).toBe('42501');
      expect(await codeOf(client.query('SELECT * FROM tenantry.credential'))).toBe('42501');
    });
  });

  it('a tenant without a login role cannot be reached with the tenant identity', async () => {
    const error = await tenantry
      .withTenant('HomeDepot', async () => 1, { identity: 'tenant' })
      .catch((e: unknown) => e);
    expect(isTenantryError(error, 'TENANT_NO_ROLE')).toBe(true);
  });
});
