import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTenantry,
  generateMasterKey,
  isTenantryError,
  type Identity,
  type Tenant,
  type Tenantry,
} from '../src/index.js';
import { DATA_PLANE_VERSION } from '../src/isolation/database-objects.js';
import { DatabaseProvisioner } from '../src/isolation/index.js';
import { createTestDatabase, urlFor, withClient } from './helpers/db.js';

// Step 3's tenant objects for database tenants, in their own database: tenant-specific views
// (Phoenix's rules), per-tenant columns, tenant indexes and the guards on tenant code — with the
// same SQL as shared and schema tenants (test/tenant-views.test.ts, test/tenant-columns.test.ts).

let tenantry: Tenantry;
let url: string;

const faceOf = (uuid: string) => `tenantry_f_${uuid.replace(/-/g, '')}`;
/** A superuser connection to `tenant`'s own database. */
const inDatabaseOf = <T>(tenant: Tenant, fn: (client: pg.Client) => Promise<T>) =>
  withClient(urlFor(url, tenant.databaseName!), fn);
const stateOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};
const as = <T>(tenant: string, identity: Identity, fn: Parameters<Tenantry['withTenant']>[1]) =>
  tenantry.withTenant(tenant, fn, { identity }) as Promise<T>;
const fieldsOf = (tenant: string, sql: string) =>
  as<string[]>(tenant, 'tenant', async (db) => (await db.query(sql)).fields.map((f) => f.name));
const tenantIndexes = (tenant: Tenant) =>
  inDatabaseOf(tenant, async (c) =>
    (
      await c.query<{ indexname: string }>(
        "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'tenantry\\_ix\\_%' ORDER BY 1",
      )
    ).rows.map((r) => r.indexname),
  );

beforeAll(async () => {
  url = await createTestDatabase('db_tenant_objects');
  tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await tenantry.operator.query(`
    CREATE TABLE event (tenant_id int NOT NULL, event_id int NOT NULL, event_type int NOT NULL, payload text,
                        PRIMARY KEY (tenant_id, event_id));
    CREATE TABLE customer (tenant_id int NOT NULL, cust_num int NOT NULL, name text NOT NULL,
                           PRIMARY KEY (tenant_id, cust_num));
    CREATE TABLE state (code text PRIMARY KEY);
    CREATE TABLE region (code text PRIMARY KEY);
    CREATE TABLE country (code text PRIMARY KEY);`);
  await tenantry.tables.multiTenant('public.event');
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  await tenantry.tenants.create({ name: 'Acme', isolation: 'database' });
  await tenantry.tenants.create({ name: 'Globex', isolation: 'database' });
  await tenantry.tenants.create({ name: 'Initech', loginRole: true });
  for (const tenant of ['Acme', 'Globex', 'Initech']) {
    await tenantry.withTenant(tenant, async (db) => {
      await db.query(
        'INSERT INTO event (event_id, event_type, payload) SELECT g, 4 + g % 3, $1 FROM generate_series(1, 9) g',
        [tenant],
      );
      await db.query(
        'INSERT INTO customer (cust_num, name) SELECT g, $1 || g FROM generate_series(1, 2000) g',
        [tenant],
      );
    });
  }
});
afterAll(async () => {
  await tenantry?.close();
});

describe('tenant-specific views of a database tenant, in its own database', () => {
  it.each(['tenant', 'app'] as const)(
    'the tenant creates its own view with its own WHERE (%s identity); it is security_invoker and usable by both identities',
    async (identity) => {
      const view = `event5_${identity}`;
      const rows = await as<{ payload: string; event_type: number }[]>('Acme', identity, async (db) => {
        await db.query(`CREATE VIEW ${view} AS SELECT * FROM event WHERE event_type = 5`);
        return (await db.query(`SELECT payload, event_type FROM ${view}`)).rows;
      });
      expect(rows.length).toBe(3);
      expect(rows.every((r) => r.payload === 'Acme' && r.event_type === 5)).toBe(true);
      const other: Identity = identity === 'app' ? 'tenant' : 'app';
      const count = await as<number>(
        'Acme',
        other,
        async (db) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${view}`)).rows[0]!.n,
      );
      expect(count).toBe(3);
      const acme = await tenantry.resolveTenant('Acme');
      const options = await inDatabaseOf(acme, async (c) =>
        (
          await c.query<{ reloptions: string[] }>(
            'SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
            [faceOf(acme.uuid), view],
          )
        ).rows.map((r) => r.reloptions),
      );
      expect(options).toEqual([['security_invoker=true']]);
    },
  );

  it('simple views are updatable, and WITH CHECK OPTION works as in PostgreSQL', async () => {
    await as('Acme', 'tenant', async (db) => {
      await db.query("INSERT INTO event5_tenant (event_id, event_type, payload) VALUES (100, 5, 'via view')");
      expect(
        (await db.query("UPDATE event5_tenant SET payload = 'updated' WHERE event_id = 100")).rowCount,
      ).toBe(1);
      await db.query(
        'CREATE VIEW event5_checked AS SELECT * FROM event WHERE event_type = 5 WITH CHECK OPTION',
      );
      const error = await db
        .query("INSERT INTO event5_checked (event_id, event_type, payload) VALUES (101, 6, 'wrong')")
        .catch((e: unknown) => e);
      expect((error as { code?: string }).code).toBe('44000');
    });
    const updated = await as<number>(
      'Acme',
      'app',
      async (db) =>
        (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM event WHERE payload = 'updated'"))
          .rows[0]!.n,
    );
    expect(updated).toBe(1);
  });

  it('another tenant — database or shared — neither finds nor names the view, nor sees its rows', async () => {
    const acme = await tenantry.resolveTenant('Acme');
    for (const [tenant, identity] of [
      ['Globex', 'tenant'],
      ['Globex', 'app'],
      ['Initech', 'tenant'],
      ['Initech', 'app'],
    ] as const) {
      expect(await stateOf(as(tenant, identity, (db) => db.query('SELECT * FROM event5_tenant')))).toBe(
        '42P01',
      );
      expect(
        await stateOf(
          as(tenant, identity, (db) => db.query(`SELECT * FROM ${faceOf(acme.uuid)}.event5_tenant`)),
        ),
      ).toMatch(/^(42P01|3F000|42501)$/);
      const payloads = await as<string[]>(tenant, identity, async (db) =>
        (await db.query<{ payload: string }>('SELECT DISTINCT payload FROM event')).rows.map(
          (r) => r.payload,
        ),
      );
      expect(payloads).toEqual([tenant]);
    }
    // nothing of Acme's reached the catalog database or Globex's database
    const globex = await tenantry.resolveTenant('Globex');
    for (const check of [
      (sql: string, values: unknown[]) => withClient(url, (c) => c.query(sql, values)),
      (sql: string, values: unknown[]) => inDatabaseOf(globex, (c) => c.query(sql, values)),
    ]) {
      const { rowCount } = await check("SELECT 1 FROM pg_class WHERE relname LIKE 'event5%'", []);
      expect(rowCount).toBe(0);
    }
  });

  it('Phoenix’s rules: a view over a non-multi-tenant table, or from a non-tenant session, is a clear error', async () => {
    const acme = await tenantry.resolveTenant('Acme');
    for (const identity of ['tenant', 'app'] as const) {
      const shared = await as('Acme', identity, (db) =>
        db.query('CREATE VIEW states AS SELECT * FROM state'),
      ).catch((e: unknown) => e);
      expect(isTenantryError(shared, 'TENANT_VIEW')).toBe(true);
      expect((shared as Error).message).toMatch(/only multi-tenant tables.*state/);
    }
    // the application role may name the base table; a tenant view may not read it
    const base = await as('Acme', 'app', (db) =>
      db.query('CREATE VIEW raw AS SELECT * FROM public.event'),
    ).catch((e: unknown) => e);
    expect(isTenantryError(base, 'TENANT_VIEW')).toBe(true);
    expect((base as Error).message).toMatch(/public\.event/);
    const operator = await inDatabaseOf(acme, (c) =>
      c.query(`CREATE VIEW ${faceOf(acme.uuid)}.sneaky AS SELECT * FROM public.event`),
    ).catch((e: unknown) => e);
    expect((operator as Error).message).toMatch(/TENANTRY_ERR_TENANT_VIEW: Only the tenant itself/);
  });

  it('its database has the catalog’s event triggers: Phoenix’s rules and migration 17’s guards on tenant code', async () => {
    const acme = await tenantry.resolveTenant('Acme');
    const triggers = async (client: pg.Client) =>
      (
        await client.query<{ evtname: string; evtevent: string; fn: string }>(
          `SELECT evtname, evtevent, evtfoid::regproc::text AS fn FROM pg_event_trigger
           WHERE evtname IN ('tenantry_tenant_ddl_start', 'tenantry_tenant_ddl_end', 'tenantry_tenant_routines',
                             'tenantry_tenant_settings') AND evtenabled = 'O' ORDER BY evtname`,
        )
      ).rows;
    const inCatalog = await withClient(url, triggers);
    expect(inCatalog.length).toBe(4);
    expect(await inDatabaseOf(acme, triggers)).toEqual(inCatalog);
  });
});

describe('per-tenant columns and tenant indexes of a database tenant, in its own database', () => {
  it.each(['tenant', 'app'] as const)(
    'the tenant adds a typed column that appears only in its own view, writable (%s identity)',
    async (identity) => {
      const column = `loyalty_${identity}`;
      await as('Acme', identity, async (db) => {
        await db.query('SELECT tenantry.add_tenant_column($1, $2, $3)', ['customer', column, 'integer']);
        await db.query(`INSERT INTO customer (cust_num, name, ${column}) VALUES (9001, 'Vip', 42)`);
        await db.query(`UPDATE customer SET ${column} = 7 WHERE cust_num = 1`);
        const { rows, fields } = await db.query<Record<string, number | null>>(
          'SELECT * FROM customer WHERE cust_num IN (1, 2, 9001) ORDER BY cust_num',
        );
        expect(fields.map((f) => f.name)).toEqual(
          identity === 'tenant'
            ? ['cust_num', 'name', 'loyalty_tenant']
            : ['cust_num', 'name', 'loyalty_app', 'loyalty_tenant'],
        );
        expect(rows.map((r) => r[column])).toEqual([7, null, 42]);
        const wrong = await db
          .query(`UPDATE customer SET ${column} = 'many' WHERE cust_num = 1`)
          .catch((e: unknown) => e);
        expect((wrong as { code?: string }).code).toBe('22P02');
        expect((await db.query('DELETE FROM customer WHERE cust_num = 9001')).rowCount).toBe(1);
      });
      // the other identity sees the same column and values
      const other: Identity = identity === 'app' ? 'tenant' : 'app';
      const value = await as<number>(
        'Acme',
        other,
        async (db) =>
          (await db.query<Record<string, number>>(`SELECT ${column} FROM customer WHERE cust_num = 1`))
            .rows[0]![column]!,
      );
      expect(value).toBe(7);
    },
  );

  it('other tenants do not see the column; neither the catalog’s nor their tables grow one', async () => {
    for (const tenant of ['Globex', 'Initech']) {
      expect(await fieldsOf(tenant, 'SELECT * FROM customer LIMIT 1')).toEqual(['cust_num', 'name']);
      expect(
        await stateOf(as(tenant, 'tenant', (db) => db.query('SELECT loyalty_tenant FROM customer'))),
      ).toBe('42703');
    }
    // Globex adds a column of the same name and another type, independently
    await as('Globex', 'tenant', async (db) => {
      await db.query("SELECT tenantry.add_tenant_column('customer', 'loyalty_tenant', 'text')");
      await db.query("UPDATE customer SET loyalty_tenant = 'gold' WHERE cust_num = 1");
    });
    const acme = await as<number>(
      'Acme',
      'tenant',
      async (db) =>
        (await db.query<{ v: number }>('SELECT loyalty_tenant AS v FROM customer WHERE cust_num = 1'))
          .rows[0]!.v,
    );
    expect(acme).toBe(7);
    const count = (sql: string) => async (c: pg.Client) => (await c.query<{ n: number }>(sql)).rows[0]!.n;
    const columnsOfCustomer =
      "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'customer'";
    expect(await withClient(url, count(columnsOfCustomer))).toBe(3); // tenant_id, cust_num, name
    expect(await inDatabaseOf(await tenantry.resolveTenant('Acme'), count(columnsOfCustomer))).toBe(4); // + tenantry_ext
  });

  it('a tenant index serves the tenant’s queries on its view (EXPLAIN uses it), for extra and plain columns', async () => {
    const explain = (sql: string) =>
      as<string>('Acme', 'tenant', (db) =>
        db.transaction(async (tx) => {
          await tx.query('SET LOCAL enable_seqscan = off');
          const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`);
          return rows.map((r) => r['QUERY PLAN']).join('\n');
        }),
      );
    const names = await as<string[]>('Acme', 'tenant', async (db) => [
      (
        await db.query<{ n: string }>(
          "SELECT tenantry.create_tenant_index('customer', ARRAY['loyalty_tenant']) AS n",
        )
      ).rows[0]!.n,
      (await db.query<{ n: string }>("SELECT tenantry.create_tenant_index('customer', ARRAY['name']) AS n"))
        .rows[0]!.n,
    ]);
    expect(names.every((n) => /^tenantry_ix_/.test(n))).toBe(true);
    const acme = await tenantry.resolveTenant('Acme');
    await inDatabaseOf(acme, (c) => c.query('ANALYZE public.customer'));
    expect(await explain('SELECT name FROM customer WHERE loyalty_tenant = 7')).toMatch(
      new RegExp(`Index.*${names[0]!}`),
    );
    expect(await explain("SELECT cust_num FROM customer WHERE name = 'Acme5'")).toMatch(
      new RegExp(`Index.*${names[1]!}`),
    );
    expect(await tenantIndexes(acme)).toEqual([...names].sort());
    // the index lives in Acme's database only
    expect(await tenantIndexes(await tenantry.resolveTenant('Globex'))).toEqual([]);
    const inCatalog = await withClient(
      url,
      async (c) =>
        (await c.query("SELECT 1 FROM pg_indexes WHERE indexname LIKE 'tenantry\\_ix\\_%'")).rowCount,
    );
    expect(inCatalog).toBe(0);
  });

  it('the cap (max_tenant_indexes_per_table, from the catalog, copied by a sync) holds in the tenant’s database', async () => {
    await tenantry.operator.query(
      "UPDATE tenantry.setting SET value = '2' WHERE name = 'max_tenant_indexes_per_table'",
    );
    await tenantry.tables.shared('public.region'); // syncs every database tenant
    const error = await as('Acme', 'tenant', (db) =>
      db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['name', 'cust_num'])"),
    ).catch((e: unknown) => e);
    expect(isTenantryError(error, 'INDEX_LIMIT')).toBe(true);
    // an index that exists already is answered again; another database's table has its own count
    await as('Acme', 'tenant', (db) =>
      db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['name'])"),
    );
    await as('Globex', 'tenant', (db) =>
      db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['name'])"),
    );
    await tenantry.operator.query(
      "UPDATE tenantry.setting SET value = '50' WHERE name = 'max_tenant_indexes_per_table'",
    );
  });

  it('a sync keeps the tenant’s own view working for both identities (its column grants are restored)', async () => {
    await tenantry.tables.shared('public.country');
    for (const identity of ['tenant', 'app'] as const) {
      const value = await as<number>(
        'Acme',
        identity,
        async (db) =>
          (await db.query<{ v: number }>('SELECT loyalty_tenant AS v FROM customer WHERE cust_num = 1'))
            .rows[0]!.v,
      );
      expect(value).toBe(7);
    }
  });

  it('a write user adds no column (read and write users change no schema object)', async () => {
    const error = await tenantry
      .withTenant(
        'Acme',
        (db) => db.query("SELECT tenantry.add_tenant_column('customer', 'vip', 'boolean')"),
        {
          identity: 'tenant',
          permission: 'write',
        },
      )
      .catch((e: unknown) => e);
    expect(isTenantryError(error, 'FORBIDDEN')).toBe(true);
  });
});

describe('an existing database tenant gets its own objects with the data plane', () => {
  it('a database without them (an older tenantry’s) gets them at the next sync, stamped with the data-plane version', async () => {
    await tenantry.tenants.create({ name: 'Hooli', isolation: 'database' });
    const hooli = await tenantry.resolveTenant('Hooli');
    const stamp = () =>
      inDatabaseOf(hooli, async (c) => {
        const found = await c.query("SELECT to_regclass('tenantry.data_plane') IS NOT NULL AS f");
        if (!(found.rows[0] as { f: boolean }).f) return undefined;
        return (await c.query<{ version: string }>('SELECT version FROM tenantry.data_plane')).rows[0]
          ?.version;
      });
    expect(await stamp()).toBe(DATA_PLANE_VERSION);
    // take the database back to what an older tenantry created
    await inDatabaseOf(hooli, (c) =>
      c.query(`
        DROP EVENT TRIGGER tenantry_tenant_ddl_start; DROP EVENT TRIGGER tenantry_tenant_ddl_end;
        DROP EVENT TRIGGER tenantry_tenant_routines; DROP EVENT TRIGGER tenantry_tenant_settings;
        DROP FUNCTION tenantry.add_tenant_column(text, name, text), tenantry.create_tenant_index(text, text[]),
          tenantry.refresh_tenant_view(tenantry.tenant, text), tenantry.data_table(tenantry.tenant, text),
          tenantry.on_tenant_ddl_start(), tenantry.on_tenant_ddl_end(), tenantry.ensure_own_schema(),
          tenantry.guard_tenant_routines(), tenantry.guard_tenant_settings(), tenantry.regrant_tenant_columns(),
          tenantry.holds_tenant_rows(tenantry.tenant), tenantry.tenant_view_grantees(tenantry.tenant);
        DROP TABLE tenantry.tenant_column, tenantry.registered_table, tenantry.setting, tenantry.data_plane;
        ALTER TABLE tenantry.tenant DROP COLUMN kind, DROP COLUMN isolation, DROP COLUMN schema_name;`),
    );
    expect(await stamp()).toBeUndefined();
    const missing = await as('Hooli', 'tenant', (db) =>
      db.query("SELECT tenantry.add_tenant_column('customer', 'tier', 'integer')"),
    ).catch((e: unknown) => e);
    expect((missing as { code?: string }).code).toBe('42883');
    // after upgrading tenantry, a sync of the stale databases only: Hooli's, not Acme's
    const acme = await tenantry.resolveTenant('Acme');
    const cap = () =>
      inDatabaseOf(
        acme,
        async (c) =>
          (
            await c.query<{ value: string }>(
              "SELECT value FROM tenantry.setting WHERE name = 'max_tenant_indexes_per_table'",
            )
          ).rows[0]!.value,
      );
    await inDatabaseOf(acme, (c) =>
      c.query("UPDATE tenantry.setting SET value = '7' WHERE name = 'max_tenant_indexes_per_table'"),
    );
    const admin = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const { rows } = await admin.query<{ value: string }>(
        "SELECT value FROM tenantry.secret WHERE name = 'fdw_password'",
      );
      const provisioner = new DatabaseProvisioner(admin, tenantry.servers, tenantry.roles, {
        url,
        password: rows[0]!.value,
      });
      await provisioner.syncAll({ staleOnly: true });
    } finally {
      await admin.end();
    }
    expect(await stamp()).toBe(DATA_PLANE_VERSION);
    expect(await cap()).toBe('7');
    // a full sync (any table or sequence declared) does every database
    await tenantry.sequences.create('ticket');
    expect(await cap()).toBe('50');
    await as('Hooli', 'tenant', async (db) => {
      await db.query("SELECT tenantry.add_tenant_column('customer', 'tier', 'integer')");
      await db.query("INSERT INTO customer (cust_num, name, tier) VALUES (1, 'First', 3)");
      await db.query('CREATE VIEW vip AS SELECT * FROM customer WHERE tier > 2');
      expect((await db.query('SELECT name FROM vip')).rows).toEqual([{ name: 'First' }]);
    });
    const rule = await as('Hooli', 'tenant', (db) =>
      db.query('CREATE VIEW states AS SELECT * FROM state'),
    ).catch((e: unknown) => e);
    expect(isTenantryError(rule, 'TENANT_VIEW')).toBe(true);
  });

  it('a database tenant created after shared tenants made tenant indexes gets none of them (they name other tenants)', async () => {
    await as('Initech', 'tenant', async (db) => {
      await db.query("SELECT tenantry.add_tenant_column('customer', 'score', 'integer')");
      await db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['score'])");
    });
    await tenantry.tenants.create({ name: 'Umbrella', isolation: 'database' });
    expect(await tenantIndexes(await tenantry.resolveTenant('Umbrella'))).toEqual([]);
    expect(await fieldsOf('Umbrella', 'SELECT * FROM customer')).toEqual(['cust_num', 'name']);
  });
});
