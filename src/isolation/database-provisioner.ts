import type pg from 'pg';
import type { CatalogRoles } from '../catalog/index.js';
import type { ServerRegistry } from '../servers/index.js';
import { createTenantDatabase, dropTenantDatabase, type TableCopy } from './database.js';

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
  }

  /** The definitions of every registered multi-tenant table, and the global tables' names. */
  async #schema(): Promise<{ tables: TableCopy[]; shared: { schema: string; table: string }[] }> {
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
        create: ddl.filter((s) => !isForeignKey(s)),
        foreignKeys: ddl.filter(isForeignKey),
      });
    }
    return { tables, shared };
  }

  /** Creates the tenant's role and database on `server`. */
  async create(
    tenant: { id: number; uuid: string; name: string },
    server: string,
    names: { database: string; role: string; password: string },
  ): Promise<void> {
    const { tables, shared } = await this.#schema();
    await createTenantDatabase({
      serverUrl: await this.#servers.url(server),
      database: names.database,
      role: names.role,
      rolePassword: names.password,
      appRole: this.#roles.app,
      tenant,
      tables,
      shared,
      fdw: { url: this.#fdw.url, user: this.#roles.fdw, password: this.#fdw.password },
    });
  }

  /** Drops the tenant's database and role on `server`. */
  async drop(server: string, database: string, role: string): Promise<void> {
    await dropTenantDatabase(await this.#servers.url(server), database, role);
  }
}
