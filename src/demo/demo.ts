import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Permission } from '../identity/index.js';
import type { Tenantry } from '../tenantry.js';

/** What {@link seedDemo} did. */
export interface DemoResult {
  /** False when the demo tenants were already there (nothing was changed). */
  readonly created: boolean;
  readonly tenants: readonly string[];
}

/** Customers per tenant; their custNum comes from the multi-tenant sequence custnum (1, 2, 3 in each tenant). */
const customers: Record<string, [string, string, string][]> = {
  HomeDepot: [
    ['Albert Hall', 'Atlanta', 'GA'],
    ['Candace Jones', 'Marietta', 'GA'],
    ['Carrie Abrahm', 'Raleigh', 'NC'],
  ],
  Lowes: [
    ['Fred Smith', 'Mooresville', 'NC'],
    ['Joan Adlon', 'Charlotte', 'NC'],
    ['George Holmes', 'Boston', 'MA'],
  ],
  LowesNY: [['Nora Young', 'Albany', 'NY']],
  LowesBos: [['Bill Otis', 'Boston', 'MA']],
};

const orders: Record<string, [number, number, string][]> = {
  HomeDepot: [
    [1, 1, 'Shipped'],
    [2, 3, 'Ordered'],
  ],
  Lowes: [
    [1, 2, 'Ordered'],
    [2, 2, 'Shipped'],
    [3, 3, 'Ordered'],
  ],
};

/** Seed 004's nine items: HomeDepot's own, and the LowesItm group's, entered by its members. */
const items: Record<string, [number, string, string][]> = {
  HomeDepot: [
    [2, 'Lawn Mower', '249.00'],
    [5, 'Screw Driver', '7.49'],
    [6, 'Table', '89.00'],
  ],
  LowesBos: [
    [1, 'Shovel', '24.99'],
    [3, 'Extension cable', '12.49'],
    [7, 'Green Paint', '31.00'],
    [9, 'Lamp', '45.00'],
  ],
  LowesNY: [
    [4, 'Hammer', '15.99'],
    [8, 'Faucet', '79.00'],
  ],
};

/** Rows of seed 002's `users` table (the HTTP API's /v1/internal/users). */
const appUsers: Record<string, string[]> = {
  HomeDepot: ['Hank Depot', 'Dana Orange'],
  Lowes: ['Lou Blue'],
};

/** Seed 004's users, one per domain, with their permission; every password is `demo`. */
const demoUsers: readonly (readonly [string, Permission])[] = [
  ['alice@HomeDepot', 'write'],
  ['admin@HomeDepot', 'admin'],
  ['fred@Lowes', 'write'],
  ['nina@LowesNY', 'read'],
  ['bob@LowesBos', 'write'],
  ['root@ops', 'admin'],
];

/**
 * Installs seed 004's demo: tables `customer`, `"order"`, `item` (multi-tenant) and `state`
 * (shared); tenants HomeDepot, Lowes, LowesNY, LowesBos and the super tenant `ops`; the group
 * LowesItm (LowesNY and LowesBos share `item`); seed 002's `users` table; the multi-tenant sequence custnum; Lowes's view
 * ma_customers and HomeDepot's own column customer.loyalty; their rows; a sign-on domain per
 * tenant with the users alice@HomeDepot, admin@HomeDepot (admin: may create its own tables and
 * views), fred@Lowes, nina@LowesNY (read), bob@LowesBos and root@ops (admin), password `demo` (needs a master key, which `tenantry serve` always has).
 * Does nothing when the tenant HomeDepot already exists.
 */
export async function seedDemo(tenantry: Tenantry): Promise<DemoResult> {
  const tenants = [...Object.keys(customers), 'ops'];
  if (tenantry.catalog.get('HomeDepot')) return { created: false, tenants };
  await tenantry.sequences.create('custnum');
  await tenantry.operator.query(readFileSync(fileURLToPath(new URL('demo.sql', import.meta.url)), 'utf8'));
  for (const table of ['public.customer', 'public."order"', 'public.item', 'public.users'])
    await tenantry.tables.multiTenant(table);
  await tenantry.tables.shared('public.state');
  for (const name of Object.keys(customers)) await tenantry.tenants.create({ name });
  await tenantry.tenants.create({ name: 'ops', kind: 'super' });
  await tenantry.groups.create('LowesItm', { table: 'public.item', tenants: ['LowesNY', 'LowesBos'] });
  // Sign-on: a domain per tenant and one user each, all with the password `demo`.
  for (const name of tenants) await tenantry.domains.add(name, { tenant: name });
  for (const [user, permission] of demoUsers)
    await tenantry.users.add(user, { password: 'demo', permission });
  for (const [name, rows] of Object.entries(customers)) {
    await tenantry.withTenant(name, (db) =>
      db.transaction(async (tx) => {
        for (const [customer, city, state] of rows) {
          await tx.query('INSERT INTO customer (name, city, state) VALUES ($1, $2, $3)', [
            customer,
            city,
            state,
          ]);
        }
        for (const [num, cust, status] of orders[name] ?? []) {
          await tx.query('INSERT INTO "order" (order_num, cust_num, status) VALUES ($1, $2, $3)', [
            num,
            cust,
            status,
          ]);
        }
        for (const user of appUsers[name] ?? []) {
          await tx.query('INSERT INTO users (name) VALUES ($1)', [user]);
        }
        for (const [num, item, price] of items[name] ?? []) {
          await tx.query('INSERT INTO item (item_num, item_name, price) VALUES ($1, $2, $3)', [
            num,
            item,
            price,
          ]);
        }
      }),
    );
  }
  // Phoenix: a tenant-specific view (Lowes) and a per-tenant column (HomeDepot).
  await tenantry.withTenant('Lowes', (db) =>
    db.query("CREATE VIEW ma_customers AS SELECT * FROM customer WHERE state = 'MA'"),
  );
  await tenantry.withTenant('HomeDepot', async (db) => {
    await db.query("SELECT tenantry.add_tenant_column('customer', 'loyalty', 'integer')");
    await db.query("UPDATE customer SET loyalty = 3 WHERE name = 'Albert Hall'");
  });
  return { created: true, tenants };
}
