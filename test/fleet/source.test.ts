import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isTenantryError, loadMigrationDir, splitSections } from '../../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tenantry-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('migration files', () => {
  it('splits a file into its shared and tenant parts', () => {
    const parts = splitSections(
      [
        'CREATE TABLE a ();',
        '-- tenantry:shared',
        "SELECT tenantry.multi_tenant('a');",
        '-- tenantry:tenants',
        'CREATE INDEX i ON a ();',
        '-- tenantry:all',
        'ANALYZE a;',
      ].join('\n'),
    );
    expect(parts.shared).toBe("CREATE TABLE a ();\nSELECT tenantry.multi_tenant('a');\nANALYZE a;");
    expect(parts.tenant).toBe('CREATE TABLE a ();\nCREATE INDEX i ON a ();\nANALYZE a;');
  });

  it('loads <version>_<name>.sql and .mjs files in version order, with stable checksums', async () => {
    writeFileSync(join(dir, '0002_second.sql'), 'SELECT 2;');
    writeFileSync(join(dir, '10_tenth.mjs'), "export default { tenant: 'SELECT 10' };");
    writeFileSync(join(dir, '0001_first_one.sql'), 'SELECT 1;');
    writeFileSync(join(dir, 'README.md'), 'ignored');
    const loaded = await loadMigrationDir(dir);
    expect(loaded.map((m) => [m.version, m.name])).toEqual([
      [1, 'first one'],
      [2, 'second'],
      [10, 'tenth'],
    ]);
    expect(loaded[2]).toMatchObject({ tenant: 'SELECT 10' });
    expect(loaded[2]!.shared).toBeUndefined();
    const again = await loadMigrationDir(dir);
    expect(again.map((m) => m.checksum)).toEqual(loaded.map((m) => m.checksum));
  });

  it('refuses names without a version, duplicate versions and missing directories', async () => {
    writeFileSync(join(dir, '0002_again.sql'), 'SELECT 2;');
    const twice = await failure(loadMigrationDir(dir));
    expect(isTenantryError(twice, 'INVALID_ARGUMENT')).toBe(true);
    expect((twice as Error).message).toContain('version 2 appears twice');
    rmSync(join(dir, '0002_again.sql'));
    writeFileSync(join(dir, 'add_column.sql'), 'SELECT 1;');
    const unnamed = await failure(loadMigrationDir(dir));
    expect((unnamed as Error).message).toContain('add_column.sql: name migration files <version>_<name>.sql');
    rmSync(join(dir, 'add_column.sql'));
    expect(isTenantryError(await failure(loadMigrationDir(join(dir, 'nope'))), 'INVALID_ARGUMENT')).toBe(
      true,
    );
  });
});
