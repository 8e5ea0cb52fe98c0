import { describe, expect, it } from 'vitest';
import { AdminToken } from '../../src/http/admin-token.js';
import type { OperatorDb } from '../../src/tenantry.js';

// TENANTRY_ADMIN_TOKEN given: load() never reaches the database.
const noDatabase = {} as OperatorDb;

describe('AdminToken.matches', () => {
  it('answers the same for a token asked again (remembered answers) and never confuses tokens', async () => {
    const { admin } = await AdminToken.load(noDatabase, 'tnt_admin_secret');
    for (let round = 0; round < 3; round++) {
      expect(admin.matches('tnt_admin_secret')).toBe(true);
      expect(admin.matches('tnt_admin_secreT')).toBe(false);
      expect(admin.matches('tnt_admin_secret ')).toBe(false);
      expect(admin.matches('')).toBe(false);
    }
  });

  it('still answers once the remembered answers were cleared, and for tokens too long to remember', async () => {
    const { admin } = await AdminToken.load(noDatabase, 'x'.repeat(3000));
    for (let i = 0; i < 5000; i++) expect(admin.matches(`token-${i}`)).toBe(false);
    expect(admin.matches('x'.repeat(3000))).toBe(true);
    expect(admin.matches('x'.repeat(3000))).toBe(true);
    expect(admin.matches('x'.repeat(2999))).toBe(false);
  });
});
