import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type Identity,
  type Tenantry,
} from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';

let tenantry: Tenantry;
let url: string;

const faceOf = (uuid: string) => `tenantry_f_${uuid.replace(/-/g, '')}`;
const schemaExists = (name: string) =>
  withClient(
    url,
    async (c) => (await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name])).rowCount === 1,
  );

beforeAll(async () => {
  url = await createTestDatabase('tenant_views');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE event (tenant_id int NOT NULL, event_id int NOT NULL, event_type int NOT NULL, payload text,
                        PRIMARY KEY (tenant_id, event_id));
    CREATE TABLE state (code text PRIMARY KEY);`);
  await tenantry.tables.multiTenant('public.event');
  await tenantry.tables.shared('public.state');
  await tenantry.tenants.create({ name: 'Acme', loginRole: true });
  await tenantry.tenants.create({ name: 'Globex', loginRole: true });
  await tenantry.tenants.create({ name: 'Initech', isolation: 'schema' });
  for (const tenant of ['Acme', 'Globex', 'Initech']) {
    await tenantry.withTenant(tenant, (db) =>
      db.query(
        'INSERT INTO event (event_id, event_type, payload) SELECT g, 4 + g % 3, $1 FROM generate_series(1, 9) g',
        [tenant],
      ),
    );
  }
});
afterAll(async () => {
  await tenantry?.close();
});

describe('tenant-specific views (seed 001: Acme’s event view with event_type = 5)', () => {
  it.each(['tenant', 'app'] as const)(
    'a tenant creates its own view with its own WHERE (%s identity)',
    async (identity: Identity) => {
      const tenant = identity === 'tenant' ? 'Acme' : 'Initech';
      const acme = await tenantry.resolveTenant(tenant);
      if (identity === 'tenant') expect(await schemaExists(faceOf(acme.uuid))).toBe(false);
      const rows = await tenantry.withTenant(
        tenant,
        async (db) => {
          await db.query('CREATE VIEW event5 AS SELECT * FROM event WHERE event_type = 5');
          return (
            await db.query<{ payload: string; event_type: number }>('SELECT payload, event_type FROM event5')
          ).rows;
        },
        { identity },
      );
      expect(rows.length).toBe(3);
      expect(rows.every((r) => r.payload === tenant && r.event_type === 5)).toBe(true);
      expect(await schemaExists(faceOf(acme.uuid))).toBe(true);
    },
  );

  it('simple tenant views are updatable, and WITH CHECK OPTION works as in PostgreSQL', async () => {
    await tenantry.withTenant(
      'Acme',
      async (db) => {
        await db.query("INSERT INTO event5 (event_id, event_type, payload) VALUES (100, 5, 'via view')");
        expect((await db.query("UPDATE event5 SET payload = 'updated' WHERE event_id = 100")).rowCount).toBe(
          1,
        );
        await db.query(
          'CREATE VIEW event5_checked AS SELECT * FROM event WHERE event_type = 5 WITH CHECK OPTION',
        );
        const error = await db
          .query("INSERT INTO event5_checked (event_id, event_type, payload) VALUES (101, 6, 'wrong')")
          .catch((e: unknown) => e);
        expect((error as { code?: string }).code).toBe('44000');
      },
      { identity: 'tenant' },
    );
    const owner = await tenantry.withTenant(
      'Acme',
      async (db) =>
        (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM event WHERE payload = 'updated'"))
          .rows[0]!.n,
    );
    expect(owner).toBe(1);
  });

  it('only that tenant can use it: another tenant neither finds nor names it', async () => {
    const acme = await tenantry.resolveTenant('Acme');
    const find = await tenantry
      .withTenant('Globex', (db) => db.query('SELECT * FROM event5'), { identity: 'tenant' })
      .catch((e: unknown) => e);
    expect((find as { code?: string }).code).toBe('42P01');
    const name = await tenantry
      .withTenant('Globex', (db) => db.query(`SELECT * FROM ${faceOf(acme.uuid)}.event5`), {
        identity: 'tenant',
      })
      .catch((e: unknown) => e);
    expect((name as { code?: string }).code).toBe('42501');
  });

  it('a view over a non-multi-tenant table, or from a non-tenant session, is a clear error', async () => {
    const shared = await tenantry
      .withTenant('Acme', (db) => db.query('CREATE VIEW states AS SELECT * FROM state'), {
        identity: 'tenant',
      })
      .catch((e: unknown) => e);
    expect(isTenantryError(shared, 'TENANT_VIEW')).toBe(true);
    expect((shared as Error).message).toMatch(/only multi-tenant tables.*state/);
    const acme = await tenantry.resolveTenant('Acme');
    const operator = await tenantry.operator
      .query(`CREATE VIEW ${faceOf(acme.uuid)}.sneaky AS SELECT * FROM public.event`)
      .catch((e: unknown) => e);
    expect((operator as Error).message).toMatch(/TENANTRY_ERR_TENANT_VIEW: Only the tenant itself/);
  });
});
