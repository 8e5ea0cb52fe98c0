import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type pg from 'pg';
import { TenantryError } from '../errors.js';

/** Where a migration step runs (docs/fleet.md). */
export type MigrationScope = 'shared' | 'tenant';

/** The connection a TypeScript migration step gets: one transaction on one target. */
export interface MigrationDb {
  /** `shared` (the catalog database, as the operator) or `tenant` (a schema, database or template). */
  readonly scope: MigrationScope;
  /** What the step runs on, e.g. `shared`, `tenant Acme (schema)`, `template database on main`. */
  readonly target: string;
  /** Runs SQL inside the step's transaction (in a schema tenant, its schema comes first on the search_path). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: readonly unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/** SQL text, or a function that runs statements through `db`. */
export type MigrationStep = string | ((db: MigrationDb) => Promise<void>);

/**
 * One application migration. `shared` runs once on the catalog database (shared tables and the
 * base multi-tenant tables); `tenant` runs in every schema tenant (its schema first on the
 * search_path), every database tenant (its own database) and the templates new tenants are
 * cloned from. A step left out does nothing there.
 */
export interface Migration {
  /** Positive integer; migrations apply in ascending order. */
  readonly version: number;
  readonly name: string;
  readonly shared?: MigrationStep;
  readonly tenant?: MigrationStep;
  /** Detects edits after a migration was applied (computed from SQL text when left out). */
  readonly checksum?: string;
}

/** A validated migration with its checksum. */
export interface LoadedMigration extends Migration {
  readonly checksum: string;
}

const FILE = /^(\d{1,15})(?:[_-](.*))?\.(sql|js|mjs)$/;
const MARKER = /^--\s*tenantry:\s*(all|shared|tenants?)\s*$/i;

/**
 * Splits a migration file into its shared and tenant parts. Lines `-- tenantry:shared`,
 * `-- tenantry:tenants` and `-- tenantry:all` start a section; text before the first marker
 * belongs to both.
 */
export function splitSections(sql: string): { shared: string; tenant: string } {
  const shared: string[] = [];
  const tenant: string[] = [];
  let section = 'all';
  for (const line of sql.split('\n')) {
    const marker = MARKER.exec(line.trim());
    if (marker?.[1]) {
      section = marker[1].toLowerCase().replace(/^tenant$/, 'tenants');
      continue;
    }
    if (section !== 'tenants') shared.push(line);
    if (section !== 'shared') tenant.push(line);
  }
  return { shared: shared.join('\n').trim(), tenant: tenant.join('\n').trim() };
}

function checksumOf(...parts: readonly (MigrationStep | undefined)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part === undefined ? '' : part.toString());
  return hash.digest('hex').slice(0, 16);
}

function invalid(problem: string): TenantryError {
  return new TenantryError('INVALID_ARGUMENT', { what: 'migrations', problem });
}

/**
 * Checks migrations given through the API (positive, unique versions; names; steps) and sorts
 * them by version. Throws `TENANTRY_ERR_INVALID_ARGUMENT`.
 */
export function checkMigrations(migrations: readonly Migration[]): LoadedMigration[] {
  const seen = new Set<number>();
  const checked = migrations.map((m) => {
    if (!Number.isSafeInteger(m.version) || m.version <= 0)
      throw invalid(`version ${String(m.version)} is not a positive integer`);
    if (seen.has(m.version)) throw invalid(`version ${m.version} appears twice`);
    seen.add(m.version);
    if (typeof m.name !== 'string') throw invalid(`migration ${m.version} has no name`);
    for (const step of [m.shared, m.tenant]) {
      if (step !== undefined && typeof step !== 'string' && typeof step !== 'function')
        throw invalid(`migration ${m.version}: a step is SQL text or a function`);
    }
    return { ...m, checksum: m.checksum ?? checksumOf(m.shared, '\u0000', m.tenant) };
  });
  return checked.sort((a, b) => a.version - b.version);
}

/**
 * Reads the migrations in `dir`: `<version>_<name>.sql` files (sections as in
 * {@link splitSections}) and `<version>_<name>.js|.mjs` modules whose default export is
 * `{ shared?, tenant? }`. Throws `TENANTRY_ERR_INVALID_ARGUMENT` for a missing directory,
 * a file name without a version, or a version used twice.
 */
export async function loadMigrationDir(dir: string): Promise<LoadedMigration[]> {
  const path = resolve(dir);
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) throw invalid(`${path} is not a directory (pass --dir)`);
  const migrations: Migration[] = [];
  for (const file of (await readdir(path)).sort()) {
    if (!/\.(sql|js|mjs)$/.test(file)) continue;
    const match = FILE.exec(file);
    if (!match?.[1])
      throw invalid(`${file}: name migration files <version>_<name>.sql, e.g. 0001_create_invoice.sql`);
    const version = Number(match[1]);
    const name = (match[2] ?? '').replace(/_/g, ' ') || file;
    if (match[3] === 'sql') {
      const text = await readFile(join(path, file), 'utf8');
      const { shared, tenant } = splitSections(text);
      migrations.push({ version, name, shared, tenant, checksum: checksumOf(text) });
    } else {
      const loaded = (await import(pathToFileURL(join(path, file)).href)) as {
        default?: Partial<Migration>;
      };
      const m = loaded.default ?? {};
      migrations.push({
        version,
        name: m.name ?? name,
        ...(m.shared === undefined ? {} : { shared: m.shared }),
        ...(m.tenant === undefined ? {} : { tenant: m.tenant }),
        ...(m.checksum === undefined ? {} : { checksum: m.checksum }),
      });
    }
  }
  return checkMigrations(migrations);
}
