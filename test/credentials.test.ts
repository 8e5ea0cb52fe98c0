import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, isTenantryError, type Tenantry } from '../src/index.js';
import { createTestDatabase, withClient } from './helpers/db.js';
import { createStoreTables } from './helpers/fixtures.js';

let url: string;
const oldKey = generateMasterKey();
const newKey = generateMasterKey();
const open: Tenantry[] = [];

async function start(masterKey: string): Promise<Tenantry> {
  const t = await createTenantry({ databaseUrl: url, masterKey });
  open.push(t);
  return t;
}

const count = (t: Tenantry, tenant: string) =>
  t.withTenant(
    tenant,
    async (db) => Number((await db.query('SELECT count(*) AS n FROM customer')).rows[0]?.n),
    {
      identity: 'tenant',
    },
  );

beforeAll(async () => {
  url = await createTestDatabase('credentials');
  const t = await start(oldKey);
  await createStoreTables(url);
  await t.tables.multiTenant('public.customer');
  for (const name of ['Alpha', 'Beta', 'Gamma']) {
    await t.tenants.create({ name, isolation: name === 'Gamma' ? 'schema' : 'shared', loginRole: true });
    await t.withTenant(name, (db) => db.query("INSERT INTO customer (cust_num, name) VALUES (1, 'x')"));
  }
});
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
});

describe('tenant credentials at rest', () => {
  it('stores role passwords sealed (AES-256-GCM), never in clear', async () => {
    await withClient(url, async (client) => {
      const { rows } = await client.query<{ owner: string; sealed: string }>(
        "SELECT owner, sealed FROM tenantry.credential WHERE owner LIKE 'tenant:%' ORDER BY owner",
      );
      expect(rows).toHaveLength(3);
      for (const row of rows) expect(row.sealed).toMatch(/^v1\.[0-9a-f]{8}\.[\w-]+\.[\w-]+\.[\w-]+$/);
    });
  });

  it('a key that does not match the stored ciphertexts is a clear start-up error', async () => {
    const error = await createTenantry({ databaseUrl: url, masterKey: generateMasterKey() }).catch(
      (e: unknown) => e,
    );
    expect(isTenantryError(error, 'MASTER_KEY_MISMATCH')).toBe(true);
  });

  it('a tampered credential fails with TENANTRY_ERR_CREDENTIAL_DECRYPT for that tenant only, when its pool is created', async () => {
    const t = await start(oldKey);
    const beta = await t.resolveTenant('Beta');
    await withClient(url, (c) =>
      c.query(
        "UPDATE tenantry.credential SET sealed = regexp_replace(sealed, '.$', CASE WHEN right(sealed, 1) = 'A' THEN 'B' ELSE 'A' END) WHERE owner = $1",
        [`tenant:${beta.id}`],
      ),
    );
    const error = await count(t, 'Beta').catch((e: unknown) => e);
    expect(isTenantryError(error, 'CREDENTIAL_DECRYPT')).toBe(true);
    expect((error as Error).message).toContain(`tenant:${beta.id}`);
    expect(await count(t, 'Alpha')).toBe(1);
    expect(await count(t, 'Gamma')).toBe(1);
    // the app identity does not need the tenant's credential
    await t.withTenant('Beta', async (db) =>
      expect((await db.query('SELECT 1 AS one')).rows[0]?.one).toBe(1),
    );
    // repair: give Beta a fresh credential by resealing a known password
    await withClient(url, async (c) => {
      await c.query(`ALTER ROLE ${beta.role!} PASSWORD 'repaired-password'`);
    });
    await t.credentials.put(t.operator, `tenant:${beta.id}`, 'password', 'repaired-password');
  });

  it('rotate-key reseals everything under the new key while the old one still decrypts', async () => {
    // Delegation signing keys sealed under the old key: the newest must stay the signing key.
    let newest = '';
    for (let i = 0; i < 5; i++) newest = await open[0]!.tokens.rotateKey();
    const rotating = await start(`${newKey},${oldKey}`);
    const resealed = await rotating.credentials.rotate();
    expect(resealed).toBeGreaterThanOrEqual(9); // three tenants, the key check, five signing keys
    expect(await rotating.credentials.rotate()).toBe(0);
    const fresh = await start(newKey);
    for (const name of ['Alpha', 'Beta', 'Gamma']) expect(await count(fresh, name)).toBe(1);
    await fresh.domains.add('Alpha', { tenant: 'Alpha' });
    await fresh.users.add('al@Alpha', { password: 'pw-al-secret' });
    const { token } = await fresh.tokens.issue({ user: 'al@Alpha', service: 'svc' });
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as {
      kid: string;
    };
    expect(header.kid).toBe(newest);
    const stale = await createTenantry({ databaseUrl: url, masterKey: oldKey }).catch((e: unknown) => e);
    expect(isTenantryError(stale, 'MASTER_KEY_MISMATCH')).toBe(true);
  });
});
