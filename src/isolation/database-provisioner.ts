import type pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';
import type { ServerRegistry } from '../servers/index.js';
import { withDatabase } from '../connection-url.js';
import { TenantryError } from '../errors.js';
import { DatabaseTemplates } from '../fleet/database-template.js';
import {
  copyTable,
  dropTenantDatabase,
  importShared,
  syncSequences,
  withClient,
  type DatabasePlan,
  type SequenceDef,
  type TableCopy,
} from './database.js';
import { DATA_PLANE_VERSION, dataPlaneVersion, installTenantObjects } from './database-objects.js';
import { installDatabaseRights } from './database-rights.js';

/** Creates and drops database tenants' databases on their servers. */
export class DatabaseProvisioner {
  readonly #admin: pg.Pool;
  readonly #servers: ServerRegistry;
  readonly #roles: CatalogRoles;
  readonly #fdw: { url: string; password: string };

  constructor(
    admin: pg.Pool,
    servers: ServerRegistry,
    roles: CatalogRoles,
    fdw: { url: string; password: string },
  ) {
    this.#admin = admin;
    this.#servers = servers;
    this.#roles = roles;
    this.#fdw = fdw;
    this.templates = new DatabaseTemplates({
      admin,
      roles,
      serverUrl: (server) => servers.url(server),
      // (`main` is the catalog's server, and `admin` connects to it as the operator)
      local: (server) => server === 'main',
      plan: (serverUrl, tenant, names) => this.#plan(serverUrl, tenant, names),
    });
  }

  /** The template databases new database tenants are cloned from (src/fleet, docs/fleet.md). */
  readonly templates: DatabaseTemplates;

  /** The definitions of every registered multi-tenant table, and the global tables' names. */
  async #schema(): Promise<{
    tables: TableCopy[];
    shared: { schema: string; table: string }[];
    sequences: SequenceDef[];
    settings: { name: string; value: string }[];
  }> {
    const { rows } = await this.#admin.query<{
      schema_name: string;
      table_name: string;
      kind: 'multi_tenant' | 'shared';
      tenant_column: string | null;
      ddl: string[] | null;
    }>(
      `SELECT schema_name, table_name, kind, tenant_column,
              CASE WHEN kind = 'multi_tenant'
                   THEN tenantry.table_ddl(format('%I.%I', schema_name, table_name)::regclass) END AS ddl
       FROM tenantry.registered_table ORDER BY schema_name, table_name`,
    );
    const tables: TableCopy[] = [];
    const shared: { schema: string; table: string }[] = [];
    const isForeignKey = (statement: string) => /^ALTER TABLE .* FOREIGN KEY/.test(statement);
    // Tenant indexes (tenantry.create_tenant_index) serve the catalog's tenants, whose ids they name.
    const isTenantIndex = (statement: string) => /^CREATE (UNIQUE )?INDEX tenantry_ix_/.test(statement);
    for (const row of rows) {
      if (row.kind === 'shared') {
        shared.push({ schema: row.schema_name, table: row.table_name });
        continue;
      }
      const ddl = row.ddl ?? [];
      tables.push({
        schema: row.schema_name,
        table: row.table_name,
        tenantColumn: row.tenant_column ?? 'tenant_id',
        create: ddl.filter((s) => !isForeignKey(s) && !isTenantIndex(s)),
        foreignKeys: ddl.filter(isForeignKey),
      });
    }
    const { rows: sequences } = await this.#admin.query<SequenceDef>(
      'SELECT name, kind, start::text AS start, increment::text AS increment FROM tenantry.sequence ORDER BY name',
    );
    const { rows: settings } = await this.#admin.query<{ name: string; value: string }>(
      'SELECT name, value FROM tenantry.setting ORDER BY name',
    );
    return { tables, shared, sequences, settings };
  }

  /**
   * Creates the tenant's role and database on `server`: a clone of the server's template
   * database (built from the registry on first use), at the template's migration version —
   * in `names.tablespace` when given (CREATE DATABASE … TABLESPACE).
   */
  async create(
    tenant: { id: number; uuid: string; name: string },
    server: string,
    names: { database: string; role: string; password: string; tablespace?: string },
  ): Promise<void> {
    await this.templates.provision(server, tenant, names);
  }

  /** What createTenantDatabase needs to build `tenant`'s database from the registry. */
  async #plan(
    serverUrl: string,
    tenant: { id: number; uuid: string; name: string },
    names: { database: string; role: string; password: string },
  ): Promise<DatabasePlan> {
    const { tables, shared, sequences, settings } = await this.#schema();
    return {
      sequences,
      settings,
      serverUrl,
      database: names.database,
      role: names.role,
      rolePassword: names.password,
      appRole: this.#roles.app,
      tenant,
      tables,
      shared,
      fdw: { url: this.#fdw.url, user: this.#roles.fdw, password: this.#fdw.password },
    };
  }

  /**
   * Brings every database tenant up to the registry after a table was declared: copies of
   * multi-tenant tables, foreign tables for global ones, and the data plane (rights, the tenant's
   * own objects, settings). Each database is done in its own transaction; failures are collected
   * and reported together (`TENANTRY_ERR_PROVISION_FAILED`) after every database was tried, and a
   * rerun completes them. `staleOnly` (e.g. after upgrading tenantry) skips the databases whose
   * data plane is already at {@link DATA_PLANE_VERSION}.
   */
  async syncAll(options: { staleOnly?: boolean } = {}): Promise<void> {
    const { rows } = await this.#admin.query<{
      name: string;
      server: string;
      database_name: string;
      role: string;
    }>(
      `SELECT t.name, t.server, t.database_name, r.role_name AS role
       FROM tenantry.tenant t JOIN tenantry.tenant_role r ON r.tenant_id = t.id AND r.permission = 'admin'
       WHERE t.isolation = 'database' AND t.database_name IS NOT NULL ORDER BY t.id`,
    );
    if (rows.length === 0) return;
    const { tables, shared, sequences, settings } = await this.#schema();
    const failed: string[] = [];
    for (const tenant of rows) {
      try {
        const url = withDatabase(await this.#servers.url(tenant.server), tenant.database_name);
        await withClient(url, async (client) => {
          if (options.staleOnly && (await dataPlaneVersion(client)) === DATA_PLANE_VERSION) return;
          await client.query('BEGIN');
          const grantees = { appRole: this.#roles.app, role: tenant.role };
          await installDatabaseRights(client, grantees);
          for (const table of tables) await copyTable(client, grantees, table);
          for (const table of tables) {
            for (const statement of table.foreignKeys) {
              const name = /ADD CONSTRAINT (\S+)/.exec(statement)?.[1];
              const exists = await client.query(
                'SELECT 1 FROM pg_constraint WHERE conname = $1 AND conrelid = to_regclass($2)',
                [name?.replace(/^"|"$/g, ''), `${table.schema}.${table.table}`],
              );
              if (!exists.rowCount) await client.query(statement);
            }
          }
          await importShared(client, {
            ...grantees,
            shared,
            fdw: { url: this.#fdw.url, user: this.#roles.fdw, password: this.#fdw.password },
          });
          await syncSequences(client, sequences);
          await installTenantObjects(client, { ...grantees, tables, shared, settings });
          await client.query('COMMIT');
        });
      } catch (error) {
        failed.push(`${tenant.name} (${error instanceof Error ? error.message : String(error)})`);
      }
    }
    if (failed.length > 0) throw new TenantryError('PROVISION_FAILED', { tenants: failed.join('; ') });
  }

  /** Drops the tenant's database and login roles (admin, write, read) on `server`. */
  async drop(server: string, database: string, roles: string | readonly string[]): Promise<void> {
    await dropTenantDatabase(await this.#servers.url(server), database, roles);
  }
}
