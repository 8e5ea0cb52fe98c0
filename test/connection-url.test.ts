import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantry, generateMasterKey, type Tenantry } from '../src/index.js';
import { withCredentials } from '../src/connection-url.js';
import { createTestDatabase } from './helpers/db.js';

let tenantry: Tenantry;
let queryForm: string;

beforeAll(async () => {
  const url = new URL(await createTestDatabase('conn_url'));
  // The same operator URL, with its credentials as query parameters (a valid libpq URI).
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  url.searchParams.set('user', user);
  url.searchParams.set('password', password);
  queryForm = url.toString();
  tenantry = await createTenantry({ databaseUrl: queryForm, masterKey: generateMasterKey() });
  await tenantry.tenants.create({ name: 'Quirk', loginRole: true });
});
afterAll(async () => {
  await tenantry?.close();
});

describe('an operator URL with user and password as query parameters', () => {
  it('never lets a tenant or application-role connection log in as the operator', async () => {
    for (const identity of ['tenant', 'app'] as const) {
      const who = await tenantry.withTenant(
        'Quirk',
        async (db) =>
          (
            await db.query<{ login: string; superuser: string }>(
              "SELECT session_user AS login, current_setting('is_superuser') AS superuser",
            )
          ).rows[0],
        { identity },
      );
      expect(who?.superuser, identity).toBe('off');
      expect(who?.login, identity).toBe(
        identity === 'app' ? tenantry.roles.app : (await tenantry.tenants.show('Quirk')).role,
      );
    }
  });

  it('withCredentials drops user and password query parameters', () => {
    const out = new URL(withCredentials(`${queryForm}&sslmode=disable`, 'tenant_x', 's3cret'));
    expect(out.searchParams.get('user')).toBeNull();
    expect(out.searchParams.get('password')).toBeNull();
    expect(out.searchParams.get('sslmode')).toBe('disable');
    expect(decodeURIComponent(out.username)).toBe('tenant_x');
  });
});
