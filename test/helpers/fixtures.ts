import { createTenantry, generateMasterKey, type TenantIsolation, type Tenantry } from '../../src/index.js';
import { createTestDatabase, withClient } from './db.js';

/** A fresh database with tenantry installed and seed 004's customer/state tables declared. */
export interface Fixture {
  readonly url: string;
  readonly tenantry: Tenantry;
}

/** Creates the customer (multi-tenant) and state (shared) tables of the demo in `url`. */
export async function createStoreTables(url: string): Promise<void> {
  await withClient(url, (client) =>
    client.query(`
      CREATE TABLE public.state (code text PRIMARY KEY, name text NOT NULL);
      INSERT INTO public.state VALUES ('GA', 'Georgia'), ('NC', 'North Carolina');
      CREATE TABLE public.customer (
        tenant_id integer NOT NULL,
        cust_num  integer NOT NULL,
        name      text NOT NULL,
        state     text REFERENCES public.state (code),
        PRIMARY KEY (tenant_id, cust_num)
      );`),
  );
}

/** How the fixture places HomeDepot and Lowes. */
export interface FixtureOptions {
  readonly isolation?: TenantIsolation;
  /** Give shared tenants their own login roles (schema tenants always have one). */
  readonly loginRole?: boolean;
}

/** Sets up a database with HomeDepot and Lowes and three customers each. */
export async function storeFixture(label: string, options: FixtureOptions = {}): Promise<Fixture> {
  const url = await createTestDatabase(label);
  const tenantry = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() });
  await createStoreTables(url);
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.shared('public.state');
  const placement = { isolation: options.isolation ?? 'shared', loginRole: options.loginRole ?? false };
  await tenantry.tenants.create({ name: 'HomeDepot', ...placement });
  await tenantry.tenants.create({ name: 'Lowes', ...placement });
  await tenantry.withTenant('HomeDepot', (db) =>
    db.query(
      "INSERT INTO customer (cust_num, name, state) VALUES (1, 'Albert Hall', 'GA'), (2, 'Candace Jones', 'GA'), (3, 'Carrie Abrahm', 'NC')",
    ),
  );
  await tenantry.withTenant('Lowes', (db) =>
    db.query(
      "INSERT INTO customer (cust_num, name, state) VALUES (1, 'Fred Smith', 'NC'), (2, 'Joan Adlon', 'NC'), (3, 'George Holmes', 'GA')",
    ),
  );
  return { url, tenantry };
}
