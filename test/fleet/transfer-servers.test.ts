import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbedded, type EmbeddedServer, type Tenantry } from '../../src/index.js';
import {
  checksumsOf,
  exportToBuffer,
  fillTenant,
  importFromBuffer,
  ownObjects,
  transferFixture,
} from './transfer-helpers.js';

// Export and import across two PostgreSQL servers (a second embedded one, as test/servers.test.ts).

const dataDir = mkdtempSync(join(tmpdir(), 'tenantry-transfer-second-'));
chmodSync(dataDir, 0o755);
let second: EmbeddedServer;
let tenantry: Tenantry;

beforeAll(async () => {
  second = await startEmbedded({ dataDir, port: 0 });
  ({ tenantry } = await transferFixture('transfer_servers'));
  await tenantry.servers.add('second', second.url);
  await tenantry.tenants.create({ name: 'HomeDepot', loginRole: true });
  await tenantry.tenants.create({ name: 'Acme', isolation: 'schema' });
  await fillTenant(tenantry, 'HomeDepot', 800);
  await fillTenant(tenantry, 'Acme', 400);
}, 300_000);
afterAll(async () => {
  await tenantry?.close();
  await second?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('export and import across servers', () => {
  it('shared on main → database on the second server → shared again: identical all the way', async () => {
    const original = await checksumsOf(tenantry, 'HomeDepot');
    const far = await importFromBuffer(tenantry, await exportToBuffer(tenantry, 'HomeDepot'), {
      as: 'HomeDepotFar',
      isolation: 'database',
      server: 'second',
    });
    expect(far.tenant).toMatchObject({ server: 'second', isolation: 'database' });
    expect(await checksumsOf(tenantry, 'HomeDepotFar')).toEqual(original);
    const back = await importFromBuffer(tenantry, await exportToBuffer(tenantry, 'HomeDepotFar'), {
      as: 'HomeDepotBack',
      isolation: 'shared',
    });
    expect(back.tenant).toMatchObject({ server: 'main', isolation: 'shared' });
    expect(await checksumsOf(tenantry, 'HomeDepotBack')).toEqual(original);
    const seen = await ownObjects(tenantry, 'HomeDepot');
    expect(await ownObjects(tenantry, 'HomeDepotFar')).toEqual(seen);
    expect(await ownObjects(tenantry, 'HomeDepotBack')).toEqual(seen);
  });

  it('a schema tenant lands in a database on the second server, with its own objects', async () => {
    const original = await checksumsOf(tenantry, 'Acme');
    await importFromBuffer(tenantry, await exportToBuffer(tenantry, 'Acme', { gzip: false }), {
      as: 'AcmeFar',
      isolation: 'database',
      server: 'second',
    });
    expect(await checksumsOf(tenantry, 'AcmeFar')).toEqual(original);
    expect(await ownObjects(tenantry, 'AcmeFar')).toEqual(await ownObjects(tenantry, 'Acme'));
  });
});
