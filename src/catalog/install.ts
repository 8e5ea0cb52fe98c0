import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { TenantryError } from '../errors.js';
import type { Logger } from '../logger.js';
import { longQuery } from '../pool/long-query.js';
import { latestVersion, loadMigrations } from './migrations.js';
import { rolesFor, type CatalogRoles } from './roles.js';

/** What installing (or upgrading) the catalog did. */
export interface InstallResult {
  /** Catalog version after the install. */
  readonly version: number;
  /** Versions applied by this call; empty when the catalog was already current. */
  readonly applied: readonly number[];
  /** Role names of this installation. */
  readonly roles: CatalogRoles;
  /** Login password of the application role (read from the catalog's secret table). */
  readonly appPassword: string;
  /** Login password of the role database tenants read global tables through. */
  readonly fdwPassword: string;
}

/**
 * The password of one of tenantry's login roles, kept in `tenantry.secret`. A new role, or one
 * whose password this catalog does not know, gets a fresh random password.
 */
async function loginPassword(
  client: pg.ClientBase,
  role: string,
  secret: string,
  created: boolean,
): Promise<string> {
  const { rows } = await client.query<{ value: string }>(
    'SELECT value FROM tenantry.secret WHERE name = $1',
    [secret],
  );
  const stored = rows[0]?.value;
  if (stored !== undefined && !created) return stored;
  const password = randomBytes(24).toString('hex');
  await client.query(`ALTER ROLE ${pg.escapeIdentifier(role)} PASSWORD ${pg.escapeLiteral(password)}`);
  await client.query(
    `INSERT INTO tenantry.secret (name, value) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
    [secret, password],
  );
  return password;
}

/** Arbitrary but fixed advisory-lock key that serialises installers of one database. */
export const INSTALL_LOCK = 7_303_446_021;

async function ensureRole(client: pg.ClientBase, role: string, attributes: string): Promise<boolean> {
  const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  if (exists.rowCount) return false;
  await client.query(`CREATE ROLE ${pg.escapeIdentifier(role)} ${attributes}`);
  return true;
}

/** The comment on a catalog's owner role, before its database's name. */
const ROLE_MARK = 'tenantry catalog of database ';

/**
 * Marks the owner role as this database's (a comment naming it) or, when it is marked for
 * another database, refuses (`TENANTRY_ERR_CATALOG_ROLES_TAKEN`): roles are cluster-wide and
 * their names keep only part of the database name, so `my-app` and `my_app` would otherwise
 * share one set of roles — the second install resetting the first's passwords, and each
 * catalog's repair taking the other's tenant roles for orphans. Roles of catalogs made before
 * the mark are claimed by the first database that installs.
 */
async function claimRoles(client: pg.ClientBase, owner: string, database: string): Promise<void> {
  const mark = `${ROLE_MARK}${database}`;
  const { rows } = await client.query<{ mark: string | null }>(
    "SELECT shobj_description(oid, 'pg_authid') AS mark FROM pg_roles WHERE rolname = $1",
    [owner],
  );
  const found = rows[0]?.mark;
  if (found === mark) return;
  if (found?.startsWith(ROLE_MARK)) {
    throw new TenantryError('CATALOG_ROLES_TAKEN', {
      role: owner.replace(/_owner$/, ''),
      other: found.slice(ROLE_MARK.length),
      database,
    });
  }
  await client.query(`COMMENT ON ROLE ${pg.escapeIdentifier(owner)} IS ${pg.escapeLiteral(mark)}`);
}

async function checkServerVersion(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ num: string; version: string }>(
    "SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version",
  );
  const row = rows[0];
  if (!row || Number(row.num) < 150000) {
    throw new TenantryError('SERVER_VERSION', { found: row?.version ?? 'unknown' });
  }
}

/**
 * Installs or upgrades schema `tenantry` with tenantry's own versioned migrations, in one
 * transaction under an advisory lock: installing twice is a no-op and concurrent installers
 * wait for each other. Needs a role that may create roles and schemas (a superuser, typically).
 * Throws `TENANTRY_ERR_SERVER_VERSION` below PostgreSQL 15 and `TENANTRY_ERR_CATALOG_TOO_NEW`
 * when the database was installed by a newer tenantry.
 */
export async function installCatalog(client: pg.ClientBase, logger?: Logger): Promise<InstallResult> {
  await checkServerVersion(client);
  await client.query('BEGIN');
  try {
    // (waits for another installer's whole upgrade)
    await client.query(longQuery('SELECT pg_advisory_xact_lock($1)', [INSTALL_LOCK]));
    const { rows: dbRows } = await client.query<{ db: string }>('SELECT current_database() AS db');
    const database = dbRows[0]?.db ?? 'postgres';
    const roles = rolesFor(database);
    const migrations = loadMigrations(roles);
    const latest = latestVersion(migrations);

    await ensureRole(client, roles.owner, 'NOLOGIN');
    await claimRoles(client, roles.owner, database);
    await ensureRole(client, roles.maint, 'NOLOGIN BYPASSRLS');
    await ensureRole(client, roles.global, 'NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE');
    if (await ensureRole(client, roles.tenants, 'NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE')) {
      await client.query(
        `GRANT ${pg.escapeIdentifier(roles.global)} TO ${pg.escapeIdentifier(roles.tenants)}`,
      );
    }
    const loginAttributes = 'LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT';
    const appCreated = await ensureRole(client, roles.app, loginAttributes);
    const fdwCreated = await ensureRole(client, roles.fdw, loginAttributes);
    for (const role of [roles.owner, roles.maint, roles.global, roles.tenants]) {
      await client.query(`GRANT ${pg.escapeIdentifier(role)} TO CURRENT_USER`);
    }

    await client.query(
      `CREATE SCHEMA IF NOT EXISTS tenantry AUTHORIZATION ${pg.escapeIdentifier(roles.owner)};
       CREATE SCHEMA IF NOT EXISTS tenantry_v AUTHORIZATION ${pg.escapeIdentifier(roles.owner)};
       REVOKE ALL ON SCHEMA tenantry_v FROM PUBLIC;
       GRANT USAGE ON SCHEMA tenantry_v TO ${pg.escapeIdentifier(roles.app)}, ${pg.escapeIdentifier(roles.global)};
       CREATE TABLE IF NOT EXISTS tenantry.catalog_version (
         version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
       ALTER TABLE tenantry.catalog_version OWNER TO ${pg.escapeIdentifier(roles.owner)};
       REVOKE ALL ON tenantry.catalog_version FROM PUBLIC`,
    );
    const { rows: versionRows } = await client.query<{ version: number | null }>(
      'SELECT max(version) AS version FROM tenantry.catalog_version',
    );
    const current = versionRows[0]?.version ?? 0;
    if (current > latest) {
      throw new TenantryError('CATALOG_TOO_NEW', { found: current, supported: latest });
    }

    const applied: number[] = [];
    await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(roles.owner)}`);
    for (const migration of migrations.filter((m) => m.version > current)) {
      logger?.info({ version: migration.version, name: migration.name }, 'applying catalog migration');
      if (migration.asInstaller) await client.query('RESET ROLE');
      await client.query(longQuery(migration.sql));
      if (migration.asInstaller) await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(roles.owner)}`);
      await client.query('INSERT INTO tenantry.catalog_version (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query('RESET ROLE');

    const appPassword = await loginPassword(client, roles.app, 'app_password', appCreated);
    const fdwPassword = await loginPassword(client, roles.fdw, 'fdw_password', fdwCreated);
    await client.query('COMMIT');
    return { version: Math.max(current, latest), applied, roles, appPassword, fdwPassword };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Reads the installed catalog's version and roles without changing anything; throws
 * `TENANTRY_ERR_CATALOG_NOT_INSTALLED` when schema `tenantry` is missing or incomplete.
 */
export async function readInstalledCatalog(client: pg.ClientBase): Promise<InstallResult> {
  const { rows } = await client.query<{ installed: boolean }>(
    "SELECT to_regclass('tenantry.catalog_version') IS NOT NULL AS installed",
  );
  if (!rows[0]?.installed) throw new TenantryError('CATALOG_NOT_INSTALLED');
  const { rows: dbRows } = await client.query<{
    db: string;
    version: number | null;
    pw: string | null;
    fdw: string | null;
  }>(
    `SELECT current_database() AS db,
            (SELECT max(version) FROM tenantry.catalog_version) AS version,
            (SELECT value FROM tenantry.secret WHERE name = 'app_password') AS pw,
            (SELECT value FROM tenantry.secret WHERE name = 'fdw_password') AS fdw`,
  );
  const row = dbRows[0];
  const latest = latestVersion(loadMigrations(rolesFor(row?.db ?? 'postgres')));
  if (!row?.pw || !row.fdw || (row.version ?? 0) < latest) throw new TenantryError('CATALOG_NOT_INSTALLED');
  if ((row.version ?? 0) > latest)
    throw new TenantryError('CATALOG_TOO_NEW', { found: row.version ?? 0, supported: latest });
  return {
    version: row.version ?? 0,
    applied: [],
    roles: rolesFor(row.db),
    appPassword: row.pw,
    fdwPassword: row.fdw,
  };
}
