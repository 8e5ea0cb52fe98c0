import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TenantryError, errorCodes, isTenantryError } from '../src/index.js';

describe('the error registry', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8');

  it('documents every code in docs/errors.md with its HTTP status and SQLSTATE', () => {
    const rows = new Map(
      doc
        .split('\n')
        .filter((l) => l.startsWith('|'))
        .map((l) => l.split('|').map((cell) => cell.trim()))
        .map((cells) => [cells[1] ?? '', cells] as const),
    );
    for (const [code, spec] of Object.entries(errorCodes)) {
      const cells = rows.get(`\`TENANTRY_ERR_${code}\``);
      expect(cells, code).toBeDefined();
      expect(cells?.[2], code).toBe(String(spec.status));
      expect(cells?.[3], code).toBe(`\`${spec.sqlstate}\``);
    }
  });

  it('uses valid HTTP statuses and five-character SQLSTATEs', () => {
    for (const spec of Object.values(errorCodes)) {
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.sqlstate).toMatch(/^[0-9A-Z]{5}$/);
    }
  });

  it('fills message templates and keeps the cause', () => {
    const cause = new Error('boom');
    const error = new TenantryError('TENANT_DISABLED', { tenant: 'Lowes' }, { cause });
    expect(error.code).toBe('TENANTRY_ERR_TENANT_DISABLED');
    expect(error.message).toBe('Tenant Lowes is disabled; enable it with `tenantry tenant enable Lowes`.');
    expect(error.status).toBe(403);
    expect(error.cause).toBe(cause);
    expect(isTenantryError(error, 'TENANT_DISABLED')).toBe(true);
    expect(isTenantryError(error, 'TENANT_LOCKED')).toBe(false);
  });
});
