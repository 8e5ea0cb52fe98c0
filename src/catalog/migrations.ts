import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { escapeIdentifier } from 'pg';
import type { CatalogRoles } from './roles.js';

/** One versioned step of the catalog schema, loaded from `src/sql/NNN_name.sql`. */
export interface CatalogMigration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Runs as the installing (super)user instead of the owner role (`-- runs as: installer`). */
  readonly asInstaller: boolean;
}

const sqlDir = fileURLToPath(new URL('../sql/', import.meta.url));

/**
 * Replaces each `-- @include NAME` line with the content of `src/sql/include/NAME`, whose own
 * includes are expanded in turn.
 */
export function expandIncludes(sql: string): string {
  return sql.replace(/^-- @include ([\w.-]+)$/gm, (_line, name: string) =>
    expandIncludes(readFileSync(`${sqlDir}include/${name}`, 'utf8')),
  );
}

/**
 * Reads the catalog migrations in version order, with the role placeholders
 * (`{{owner}}`, `{{app}}`, `{{maint}}`, `{{tenants}}`, `{{global}}`, `{{fdw}}`) replaced by quoted role names, and `{{app_name}}` etc. by
 * the bare names (for use inside string literals).
 */
export function loadMigrations(roles: CatalogRoles): CatalogMigration[] {
  return readdirSync(sqlDir)
    .filter((file) => /^\d{3}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const text = expandIncludes(readFileSync(sqlDir + file, 'utf8')).replace(
        /\{\{(owner|app|maint|tenants|global|fdw)(_name)?\}\}/g,
        (_whole, role: keyof CatalogRoles, asName?: string) =>
          asName ? roles[role].replace(/'/g, "''") : escapeIdentifier(roles[role]),
      );
      return {
        version: Number(file.slice(0, 3)),
        name: file.slice(4, -4),
        sql: text,
        asInstaller: text.startsWith('-- runs as: installer'),
      };
    });
}

/** The catalog version this build of tenantry installs. */
export function latestVersion(migrations: readonly CatalogMigration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}
