import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTenantryError, type Tenantry } from '../../src/index.js';
import { createViewSql } from '../../src/fleet/transfer/objects.js';
import type { ViewRecord } from '../../src/fleet/transfer/format.js';
import {
  checksumsOf,
  exportToBuffer,
  fillTenant,
  importFromBuffer,
  ownObjects,
  transferFixture,
} from './transfer-helpers.js';

let tenantry: Tenantry;

beforeAll(async () => {
  ({ tenantry } = await transferFixture('transfer'));
  await tenantry.tenants.create({ name: 'HomeDepot', loginRole: true });
  await tenantry.tenants.create({ name: 'Lowes', loginRole: true });
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' });
  await tenantry.tenants.create({ name: 'Globex', isolation: 'database' });
  await fillTenant(tenantry, 'HomeDepot');
  await fillTenant(tenantry, 'Lowes', 300);
  await fillTenant(tenantry, 'Acme', 700);
  await fillTenant(tenantry, 'Globex', 500);
}, 300_000);
afterAll(async () => {
  await tenantry?.close();
});

const customers = (tenant: string) =>
  tenantry.withTenant(
    tenant,
    async (db) =>
      (
        await db.query<{ cust_num: number; name: string }>(
          'SELECT cust_num, name FROM customer ORDER BY cust_num',
        )
      ).rows,
  );

describe('tenant export and import round trips', () => {
  it.each([
    ['HomeDepot', 'HomeDepot2', 'shared'],
    ['HomeDepot', 'HomeDepotS', 'schema'],
    ['Acme', 'AcmeDb', 'database'],
    ['Globex', 'GlobexShared', 'shared'],
  ] as const)('%s → %s (%s): identical checksums, own objects restored', async (from, to, isolation) => {
    const before = await checksumsOf(tenantry, from);
    const file = await exportToBuffer(tenantry, from, { batchSize: 256 });
    expect(file[0]).toBe(0x1f); // gzip
    const summary = await importFromBuffer(tenantry, file, { as: to, isolation });
    expect(summary.tenant).toMatchObject({ name: to, isolation, state: 'active' });
    expect(summary.tables).toEqual(before);
    expect(await checksumsOf(tenantry, to)).toEqual(before);
    expect(before.find((t) => t.table === 'public.customer')?.rows).toBeGreaterThan(0);
    expect(await ownObjects(tenantry, to)).toEqual(await ownObjects(tenantry, from));
  });

  it('the imported tenant sees exactly its rows; other tenants see none of them', async () => {
    expect(await customers('HomeDepot2')).toEqual(
      (await customers('HomeDepot')).filter((c) => c.cust_num <= 1500),
    );
    const lowes = await customers('Lowes');
    expect(lowes).toHaveLength(300);
    expect(lowes.every((c) => c.name.startsWith('Lowes'))).toBe(true);
    const home2 = await tenantry.resolveTenant('HomeDepot2');
    const { rows } = await tenantry.operator.query<{ tenant_id: number; n: number }>(
      'SELECT tenant_id, count(*)::int AS n FROM customer WHERE tenant_id = $1 GROUP BY 1',
      [home2.id],
    );
    expect(rows).toEqual([{ tenant_id: home2.id, n: 1500 }]);
  });

  it('tenant indexes come along', async () => {
    const acmeDb = await tenantry.resolveTenant('AcmeDb');
    const { withPlacementClient } = await import('../../src/index.js');
    const indexes = await withPlacementClient(
      tenantry,
      acmeDb,
      async (c) =>
        (
          await c.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_indexes WHERE indexname LIKE 'tenantry\\_ix\\_%'",
          )
        ).rows[0]?.n,
    );
    expect(indexes).toBe(2);
  });
});

describe('bad input and interruptions leave nothing behind', () => {
  const tenantNames = async () => (await tenantry.tenants.list()).map((t) => t.name).sort();
  let plain: string;
  let names: string[];

  beforeAll(async () => {
    plain = (await exportToBuffer(tenantry, 'Lowes', { gzip: false })).toString('utf8');
    names = await tenantNames();
  });

  const refused = async (
    file: Buffer | string,
    code: Parameters<typeof isTenantryError>[1],
    as = 'Broken',
  ) => {
    const error = await importFromBuffer(tenantry, Buffer.from(file), { as }).catch((e: unknown) => e);
    expect(isTenantryError(error, code), String(error)).toBe(true);
    expect(await tenantNames()).toEqual(names);
    return error as Error;
  };

  it('unknown tenants and taken names get clear errors', async () => {
    const unknown = await exportToBuffer(tenantry, 'Nobody').catch((e: unknown) => e);
    expect(isTenantryError(unknown, 'TENANT_NOT_FOUND')).toBe(true);
    await refused(plain, 'TENANT_EXISTS', 'lowes');
    await refused(plain, 'INVALID_ARGUMENT', '1bad name');
  });

  it('a truncated file is refused as corrupt', async () => {
    const gz = await exportToBuffer(tenantry, 'Lowes');
    const error = await refused(gz.subarray(0, Math.floor(gz.length / 2)), 'TRANSFER_CORRUPT');
    expect(error.message).toMatch(/gzip|truncated/);
    const lines = plain.split('\n');
    await refused(lines.slice(0, -3).join('\n'), 'TRANSFER_CORRUPT');
    await refused('', 'TRANSFER_CORRUPT');
  });

  it('a changed row fails its checksum; a changed trailer too', async () => {
    const tampered = plain.replace('"Lowes customer 7"', '"Lowes customer 8"');
    expect(tampered).not.toBe(plain);
    const error = await refused(tampered, 'TRANSFER_CORRUPT');
    expect(error.message).toMatch(/public\.customer do not match their checksum/);
    await refused(plain.replace(/"objects":(\d+)\}\s*$/, '"objects":99}\n'), 'TRANSFER_CORRUPT');
    await refused(plain.replace('{"row":', '{"rows":'), 'TRANSFER_CORRUPT');
  });

  it('another format version is refused by name', async () => {
    const error = await refused(plain.replace('"formatVersion":1', '"formatVersion":7'), 'TRANSFER_FORMAT');
    expect(error.message).toMatch(/format version 7/);
  });

  it('an import interrupted mid-way (Ctrl-C) removes the half tenant; a rerun completes', async () => {
    const controller = new AbortController();
    const error = await importFromBuffer(tenantry, Buffer.from(plain), {
      as: 'LowesCopy',
      isolation: 'database',
      batchSize: 50,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.rows >= 100) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(isTenantryError(error, 'TRANSFER_INTERRUPTED'), String(error)).toBe(true);
    expect(await tenantNames()).toEqual(names);
    const done = await importFromBuffer(tenantry, Buffer.from(plain), {
      as: 'LowesCopy',
      isolation: 'database',
    });
    expect(await checksumsOf(tenantry, 'LowesCopy')).toEqual(await checksumsOf(tenantry, 'Lowes'));
    expect(done.removedLeftovers).toEqual([]);
    await tenantry.tenants.drop('LowesCopy', { force: true });
  });

  it('a view definition carrying further statements is refused as corrupt, never run', () => {
    const view = (definition: string) => ({ name: 'v', options: [], definition }) as unknown as ViewRecord;
    expect(createViewSql('face', view(' SELECT 1 AS one;'))).toBe(
      'CREATE VIEW "face"."v" AS  SELECT 1 AS one;',
    );
    for (const definition of [
      "SELECT 1; SELECT set_config('tenantry.tenant', '7', true)",
      'SELECT 1 --x\r; DELETE FROM t',
    ]) {
      expect(() => createViewSql('face', view(definition))).toThrow(
        /TENANTRY_ERR_TRANSFER_CORRUPT|more than one statement/,
      );
    }
  });

  it('the leftover of a killed import is removed by the next import', async () => {
    // what a process killed mid-import leaves: a locked staging tenant nobody holds
    const left = await tenantry.tenants.create({
      name: 'tenantry-import-0123456789abcdef',
      isolation: 'schema',
    });
    await tenantry.tenants.lock(left.id);
    // A real tenant that is merely named like one is not a leftover.
    await tenantry.tenants.create({ name: 'tenantry-import-2024' });
    const done = await importFromBuffer(tenantry, Buffer.from(plain), { as: 'LowesAgain' });
    expect(done.removedLeftovers).toEqual(['tenantry-import-0123456789abcdef']);
    expect(await tenantNames()).toEqual([...names, 'LowesAgain', 'tenantry-import-2024'].sort());
    await tenantry.tenants.drop('LowesAgain', { force: true });
    await tenantry.tenants.drop('tenantry-import-2024', { force: true });
  });

  it('a tenant sharing a group segment with others is refused, naming the group', async () => {
    await tenantry.operator.query(
      `CREATE TABLE public.item (tenant_id integer NOT NULL REFERENCES tenantry.tenant (id), sku text NOT NULL,
                                 PRIMARY KEY (tenant_id, sku))`,
    );
    await tenantry.tables.multiTenant('public.item');
    await tenantry.tenants.create({ name: 'LowesNY' });
    await tenantry.tenants.create({ name: 'LowesBos' });
    await tenantry.groups.create('LowesItm', { table: 'public.item', tenants: ['LowesNY', 'LowesBos'] });
    await tenantry.withTenant('LowesNY', (db) => db.query("INSERT INTO item (sku) VALUES ('hammer')"));
    const error = await exportToBuffer(tenantry, 'LowesNY').catch((e: unknown) => e);
    expect(isTenantryError(error, 'TRANSFER_GROUPED')).toBe(true);
    expect((error as Error).message).toMatch(
      /public\.item belong to group LowesItm \(it shares them with LowesBos\)/,
    );
    // alone in the group, its segment's rows are exported as its own
    await tenantry.groups.removeMember('LowesItm', 'LowesBos');
    const file = await exportToBuffer(tenantry, 'LowesNY');
    await importFromBuffer(tenantry, file, { as: 'LowesNY2', isolation: 'schema' });
    expect(await checksumsOf(tenantry, 'LowesNY2')).toMatchObject([
      {},
      { table: 'public.item', rows: 1 },
      {},
    ]);
    const skus = await tenantry.withTenant('LowesNY2', async (db) =>
      (await db.query<{ sku: string }>('SELECT sku FROM item')).rows.map((r) => r.sku),
    );
    expect(skus).toEqual(['hammer']);
    const imported = await importFromBuffer(tenantry, await exportToBuffer(tenantry, 'LowesNY'), {
      as: 'LowesNY3',
    });
    expect(await checksumsOf(tenantry, 'LowesNY3')).toEqual(imported.tables);
    expect(imported.tables.find((t) => t.table === 'public.item')?.rows).toBe(1);
  });
});
