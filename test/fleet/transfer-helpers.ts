import { PassThrough, Readable } from 'node:stream';
import {
  createTenantry,
  exportTenant,
  generateMasterKey,
  importTenant,
  readTransferTables,
  tenantChecksums,
  withPlacementClient,
  type ExportOptions,
  type ImportOptions,
  type TableChecksum,
  type Tenantry,
} from '../../src/index.js';
import { createTestDatabase, withClient } from '../helpers/db.js';

/**
 * A catalog with two multi-tenant tables (customer, and invoice with a serial id, many types and
 * a foreign key to customer), a global table (state) and a multi-tenant sequence.
 */
export async function transferFixture(
  label: string,
): Promise<{ url: string; tenantry: Tenantry; masterKey: string }> {
  const url = await createTestDatabase(label);
  const masterKey = generateMasterKey();
  const tenantry = await createTenantry({ databaseUrl: url, masterKey });
  await withClient(url, (c) =>
    c.query(`
      CREATE TABLE public.state (code text PRIMARY KEY, name text NOT NULL);
      INSERT INTO public.state VALUES ('GA', 'Georgia'), ('NC', 'North Carolina');
      CREATE TABLE public.customer (
        tenant_id integer NOT NULL, cust_num integer NOT NULL, name text NOT NULL,
        state text REFERENCES public.state (code), PRIMARY KEY (tenant_id, cust_num));
      CREATE TABLE public.invoice (
        tenant_id integer NOT NULL, id serial, cust_num integer NOT NULL,
        amount numeric(12, 2) NOT NULL, issued timestamptz NOT NULL, due date, tags text[],
        meta jsonb, blob bytea, ratio double precision, span interval, note varchar(40),
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, cust_num) REFERENCES public.customer (tenant_id, cust_num));`),
  );
  await tenantry.tables.multiTenant('public.customer');
  await tenantry.tables.multiTenant('public.invoice');
  await tenantry.tables.shared('public.state');
  await tenantry.sequences.create('order_no', { start: 100 });
  return { url, tenantry, masterKey };
}

/**
 * Gives `tenant` customers, invoices, a per-tenant column with values, two tenant indexes, two
 * own views (one on the other) and a sequence position.
 */
export async function fillTenant(tenantry: Tenantry, tenant: string, customers = 1500): Promise<void> {
  await tenantry.withTenant(tenant, async (db) => {
    await db.query(
      `INSERT INTO customer (cust_num, name, state)
       SELECT g, $1 || ' customer ' || g, CASE WHEN g % 3 = 0 THEN 'NC' ELSE 'GA' END FROM generate_series(1, $2) g`,
      [tenant, customers],
    );
    await db.query(
      `INSERT INTO invoice (cust_num, amount, issued, due, tags, meta, blob, ratio, span, note)
       SELECT g, g * 1.25, timestamptz '2024-03-01 10:00:00+02' + g * interval '1 hour', date '2024-04-01' + g,
              ARRAY['a', 'b''' || g], jsonb_build_object('n', g, 'big', 12345678901234567890, 'nested', jsonb_build_array(1.50, 'x')),
              decode(md5(g::text), 'hex'), g / 7.0, g * interval '1 day 2 hours', CASE WHEN g % 2 = 0 THEN 'café ☕ "quoted"' END
       FROM generate_series(1, 40) g`,
    );
    await db.query("SELECT tenantry.add_tenant_column('customer', 'loyalty', 'integer')");
    await db.query('UPDATE customer SET loyalty = cust_num % 5 WHERE cust_num <= 200');
    await db.query("SELECT tenantry.create_tenant_index('customer', ARRAY['loyalty'])");
    await db.query("SELECT tenantry.create_tenant_index('invoice', ARRAY['issued'])");
    await db.query("CREATE VIEW georgia AS SELECT * FROM customer WHERE state = 'GA'");
    await db.query(
      'CREATE VIEW loyal_georgians AS SELECT cust_num, name FROM georgia WHERE loyalty > 2 WITH CHECK OPTION',
    );
    for (let i = 0; i < 3; i++) await db.query("SELECT tenantry.next('order_no')");
  });
}

/** `tenant`'s checksums per table, read on its own placement. */
export async function checksumsOf(tenantry: Tenantry, ref: string): Promise<TableChecksum[]> {
  const tenant = await tenantry.tenants.show(ref);
  const tables = await withPlacementClient(
    tenantry,
    { isolation: 'shared', server: 'main', databaseName: null },
    (c) => readTransferTables(c),
  );
  return withPlacementClient(tenantry, tenant, (c) => tenantChecksums(c, tenant, tables));
}

/** Exports `tenant` into memory. */
export async function exportToBuffer(
  tenantry: Tenantry,
  tenant: string,
  options: ExportOptions = {},
): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  await exportTenant(tenantry, tenant, sink, options);
  return Buffer.concat(chunks);
}

/** Imports an export held in memory. */
export function importFromBuffer(tenantry: Tenantry, file: Buffer, options: ImportOptions) {
  return importTenant(tenantry, Readable.from([file]), options);
}

/** What a tenant sees of its own objects: columns of customer, its views' rows, next order_no. */
export async function ownObjects(tenantry: Tenantry, tenant: string) {
  return tenantry.withTenant(tenant, async (db) => ({
    columns: (await db.query('SELECT * FROM customer LIMIT 0')).fields.map((f) => f.name),
    loyal: (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM loyal_georgians')).rows[0]?.n,
    georgia: (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM georgia')).rows[0]?.n,
    next: (await db.query<{ v: string }>("SELECT tenantry.next('order_no') AS v")).rows[0]?.v,
    // a new invoice draws an id past the restored ones
    freshInvoiceId: await (async () => {
      const old = (await db.query<{ m: number }>('SELECT max(id) AS m FROM invoice')).rows[0]?.m ?? 0;
      const { rows } = await db.query<{ id: number }>(
        'INSERT INTO invoice (cust_num, amount, issued) VALUES (1, 1, now()) RETURNING id',
      );
      return (rows[0]?.id ?? 0) > old;
    })(),
  }));
}
