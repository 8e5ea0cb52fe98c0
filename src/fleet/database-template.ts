import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';
import { TenantryError } from '../errors.js';
import { withDatabase } from '../connection-url.js';
import {
  createTenantDatabase,
  dropTenantDatabase,
  withClient,
  type DatabasePlan,
} from '../isolation/database.js';
import {
  FLEET_PLANE_SQL,
  registryFingerprint,
  saveTemplate,
  templateRows,
  type Queryable,
  type TemplateRow,
} from './fleet-store.js';
import { withoutSegmentDefaults } from './database-sync.js';
import { withTemplateLock } from './locks.js';
import { longQuery } from '../pool/long-query.js';

/** The template's stand-in tenant (its row and role become the real tenant's in each clone). */
const TEMPLATE_TENANT = { id: 0, uuid: '00000000-0000-4000-8000-000000000000', name: 'template' } as const;

const q = pg.escapeIdentifier;

/** What a new database tenant is called on its server. */
export interface DatabaseNames {
  readonly database: string;
  readonly role: string;
  readonly password: string;
  /** Tablespace the database is created in (default: the template's, i.e. the server's default). */
  readonly tablespace?: string;
}

/** What {@link DatabaseTemplates} needs from the rest of tenantry. */
export interface DatabaseTemplatesOptions {
  readonly admin: pg.Pool;
  readonly roles: CatalogRoles;
  readonly serverUrl: (server: string) => Promise<string>;
  /**
   * Whether `server` is the catalog's own server, reached as the same operator through `admin`
   * (its role and database are then created on a connection of `admin`, not a new one).
   */
  readonly local?: (server: string) => boolean;
  /** The plan of a database for `tenant` built from the registry (createTenantDatabase's input). */
  readonly plan: (
    serverUrl: string,
    tenant: { id: number; uuid: string; name: string },
    names: DatabaseNames,
  ) => Promise<DatabasePlan>;
}

/**
 * Template databases, one per server: database tenants are created with `CREATE DATABASE …
 * TEMPLATE … STRATEGY WAL_LOG` and adopted (tenant row, role, privileges) instead of building
 * every table. A template takes no connections except while `tenantry migrate` changes it
 * (CREATE DATABASE needs its template idle); its row in `tenantry.migration_template` holds
 * its version and the registry fingerprint it was built for — a stale template is rebuilt.
 */
export class DatabaseTemplates {
  /** Name of every template database and of its stand-in role. */
  readonly name: string;
  readonly #o: DatabaseTemplatesOptions;

  constructor(options: DatabaseTemplatesOptions) {
    this.#o = options;
    this.name = options.roles.app.replace(/_app$/, '_template');
  }

  /** Creates tenant `tenant`'s role and database on `server` from the template; answers its version. */
  async provision(
    server: string,
    tenant: { id: number; uuid: string; name: string },
    names: DatabaseNames,
  ): Promise<number> {
    const serverUrl = await this.#o.serverUrl(server);
    const version = await this.#clone(server, serverUrl, names);
    try {
      await withClient(withDatabase(serverUrl, names.database), async (client) => {
        await client.query('BEGIN');
        await client.query('SELECT tenantry.fleet_adopt($1, $2, $3, $4, $5, $6)', [
          this.name,
          names.role,
          this.#o.roles.app,
          tenant.id,
          tenant.uuid,
          tenant.name,
        ]);
        await client.query('COMMIT');
      });
      await this.#o.admin.query(
        `INSERT INTO tenantry.provisioned_database (database_name, version) VALUES ($1, $2)
         ON CONFLICT (database_name) DO UPDATE SET version = EXCLUDED.version, created_at = now()`,
        [names.database, version],
      );
    } catch (error) {
      await dropTenantDatabase(serverUrl, names.database, names.role).catch(() => undefined);
      throw error;
    }
    return version;
  }

  /** Clones the current template (building it first when missing or stale); answers its version. */
  async #clone(server: string, serverUrl: string, names: DatabaseNames): Promise<number> {
    const lock = await this.#o.admin.connect();
    try {
      for (let attempt = 0; ; attempt++) {
        let gone = false;
        const cloned = await withTemplateLock(lock, 'shared', async () => {
          const template = await this.usable(lock, server);
          if (!template) return undefined;
          gone = !(this.#o.local?.(server)
            ? await this.#createFrom(lock, names)
            : await withClient(serverUrl, (client) => this.#createFrom(client, names)));
          return gone ? undefined : template;
        });
        if (cloned) return cloned.version;
        if (attempt >= 3) {
          throw new TenantryError('PROVISION_FAILED', {
            tenants: `${names.database} (the template database on server ${server} keeps changing; try again)`,
          });
        }
        await withTemplateLock(lock, 'exclusive', async () => {
          if (gone || !(await this.usable(lock, server))) await this.build(lock, server);
        });
      }
    } finally {
      lock.release();
    }
  }

  /** Creates the tenant's role and its database from the template; false when the template is gone. */
  async #createFrom(client: pg.ClientBase, names: DatabaseNames): Promise<boolean> {
    await client.query(
      `CREATE ROLE ${q(names.role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(names.password)}`,
    );
    try {
      const tablespace = names.tablespace === undefined ? '' : ` TABLESPACE ${q(names.tablespace)}`;
      await client.query(
        longQuery(
          `CREATE DATABASE ${q(names.database)} TEMPLATE ${q(this.name)} STRATEGY WAL_LOG${tablespace}`,
        ),
      );
      return true;
    } catch (error) {
      await client.query(`DROP ROLE IF EXISTS ${q(names.role)}`).catch(() => undefined);
      if (error instanceof pg.DatabaseError && error.code === '3D000') return false;
      throw error;
    }
  }

  /** The template of `server` when it exists and matches the registry; else undefined. */
  async usable(db: Queryable, server: string): Promise<TemplateRow | undefined> {
    const row = (await templateRows(db)).find((t) => t.name === `database:${server}`);
    if (!row || row.fingerprint !== (await registryFingerprint(db))) return undefined;
    return row;
  }

  /**
   * (Re)builds the template of `server` from the registry, at the shared tables' version. The
   * caller holds the template lock exclusively.
   */
  async build(db: Queryable, server: string): Promise<TemplateRow> {
    const serverUrl = await this.#o.serverUrl(server);
    await this.drop(server);
    const { rows } = await db.query<{ v: string | null }>(
      'SELECT max(version) AS v FROM tenantry.app_migration',
    );
    const version = Number(rows[0]?.v ?? 0);
    const fingerprint = await registryFingerprint(db);
    const names = { database: this.name, role: this.name, password: randomBytes(24).toString('base64url') };
    const plan = await this.#o.plan(serverUrl, TEMPLATE_TENANT, names);
    await createTenantDatabase({
      ...plan,
      tables: plan.tables.map((t) => ({ ...t, create: withoutSegmentDefaults(t.create) })),
    });
    try {
      await withClient(withDatabase(serverUrl, this.name), (client) =>
        client.query(`${FLEET_PLANE_SQL};
          INSERT INTO tenantry.fleet_version (version) VALUES (${version})
          ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version`),
      );
      await withClient(serverUrl, (client) =>
        client.query(`ALTER ROLE ${q(this.name)} NOLOGIN;
          REVOKE ALL ON DATABASE ${q(this.name)} FROM ${q(this.name)};
          ALTER DATABASE ${q(this.name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`),
      );
    } catch (error) {
      await this.drop(server).catch(() => undefined);
      throw error;
    }
    const row = { name: `database:${server}`, server, objectName: this.name, version, fingerprint };
    await saveTemplate(db, row);
    return row;
  }

  /** Drops the template of `server` (database and stand-in role), when there is one. */
  async drop(server: string): Promise<void> {
    const serverUrl = await this.#o.serverUrl(server);
    await withClient(serverUrl, async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.name]);
      if (rowCount) await client.query(`ALTER DATABASE ${q(this.name)} WITH IS_TEMPLATE false`);
    });
    await dropTenantDatabase(serverUrl, this.name, this.name);
  }

  /**
   * Runs `fn` connected to the template of `server` (opened to connections meanwhile). The
   * caller holds the template lock exclusively.
   */
  async open<T>(server: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const serverUrl = await this.#o.serverUrl(server);
    const allow = (on: boolean) =>
      withClient(serverUrl, (c) => c.query(`ALTER DATABASE ${q(this.name)} WITH ALLOW_CONNECTIONS ${on}`));
    await allow(true);
    try {
      return await withClient(withDatabase(serverUrl, this.name), fn);
    } finally {
      await allow(false);
    }
  }
}
